//! An independent check of the frame vectors: `conformance/python/check_frames.py`
//! decodes every frame of `spec/vectors/frames.json` and every plaintext of
//! `spec/vectors/packets.json` with Python's `cbor2` and checks it against
//! the CDDL of `spec/frames.md` (rule names and type numbers read from the
//! spec text), plus the spec's own examples as a self-test.
//!
//! The interpreter comes from the venv the Python tests share (see
//! `tern_tests::python_interpreter`); with `TERN_SKIP_PYTHON_INTEROP=1`
//! these tests say they skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tern_tests::{python_interpreter, target_dir, workspace_root};

fn script() -> PathBuf {
    workspace_root().join("conformance/python/check_frames.py")
}

fn check(python: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(python)
        .arg(script())
        .args(args)
        .output()
        .expect("run check_frames.py")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `N passed, M failed` summary line.
fn summary(out: &Output) -> (usize, usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {}", text(out)));
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        [p, "passed,", f, "failed"] => (p.parse().unwrap(), f.parse().unwrap()),
        _ => panic!("no summary line: {}", text(out)),
    }
}

#[test]
fn vectors_match_the_cddl() {
    let Some(python) = python_interpreter() else {
        return;
    };
    let out = check(&python, &[]);
    let (passed, failed) = summary(&out);
    assert!(
        out.status.success() && failed == 0,
        "check_frames.py failed:\n{}",
        text(&out)
    );
    // 12 frames, the coverage check, 6 packet plaintexts, and the spec's
    // 37 full examples: a run that silently skipped a file would count
    // fewer.
    let frames = fs::read_to_string(workspace_root().join("spec/vectors/frames.json")).unwrap();
    let n_frames = frames.matches("\"hex\"").count();
    assert!(n_frames >= 10, "only {n_frames} frame vectors");
    assert!(
        passed > n_frames + 1 + 20,
        "only {passed} checks passed:\n{}",
        text(&out)
    );
}

/// A temporary copy of frames.json with vector `name` changed by `mutate`.
fn mutated(test: &str, name: &str, mutate: impl Fn(&str) -> String) -> PathBuf {
    let path = workspace_root().join("spec/vectors/frames.json");
    let json = fs::read_to_string(&path).unwrap();
    let at = json
        .find(&format!("\"name\": \"{name}\""))
        .unwrap_or_else(|| panic!("no vector {name:?} in frames.json"));
    let hex_at = at + json[at..].find("\"hex\": \"").unwrap() + "\"hex\": \"".len();
    let hex_end = hex_at + json[hex_at..].find('"').unwrap();
    let hex = &json[hex_at..hex_end];
    let changed = mutate(hex);
    assert_ne!(hex, changed, "the mutation changed nothing");
    let out = format!("{}{changed}{}", &json[..hex_at], &json[hex_end..]);
    let dir = target_dir().join("tmp").join("frames_python");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{test}.json"));
    fs::write(&file, out).unwrap();
    file
}

fn assert_refused(file: &Path, name: &str) {
    let Some(python) = python_interpreter() else {
        return;
    };
    let out = check(
        &python,
        &[
            "--frames".as_ref(),
            file.as_os_str(),
            "--packets".as_ref(),
            "-".as_ref(),
            "--no-examples".as_ref(),
        ],
    );
    let (_, failed) = summary(&out);
    assert!(
        !out.status.success() && failed >= 1,
        "a mutated vector passed:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("FAIL frames.json '{name}'")),
        "the failure does not name the mutated vector:\n{}",
        text(&out)
    );
}

#[test]
fn a_wrong_type_number_fails() {
    // MAX_DATA `82 06 ...` becomes type 7: a MAX_CHANNEL_DATA with a
    // field missing.
    let name = "MAX_DATA 1048576";
    let file = mutated("wrong_type", name, |h| h.replacen("8206", "8207", 1));
    assert_refused(&file, name);
}

#[test]
fn a_wrong_field_type_fails() {
    // DATAGRAM `82 04 43 ...`: the byte string head becomes a text string
    // head of the same length.
    let name = "DATAGRAM 3 bytes";
    let file = mutated("wrong_field", name, |h| h.replacen("820443", "820463", 1));
    assert_refused(&file, name);
}

#[test]
fn a_reserved_type_fails() {
    // PING `[1]` becomes `[10]`, a reserved type.
    let name = "PING";
    let file = mutated("reserved_type", name, |h| h.replacen("8101", "810a", 1));
    assert_refused(&file, name);
}
