//! The Python virtual environment the Python-based tests share: one venv
//! under the target directory with every pinned package they need
//! (`noiseprotocol` for the live Noise interop, `cbor2` for the independent
//! check of the frame vectors), created on first use.

use std::env;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The version of Python's `noiseprotocol` the interop tests use.
pub const NOISEPROTOCOL_VERSION: &str = "0.3.1";

/// The version of Python's `cbor2` the frame-vector check uses.
pub const CBOR2_VERSION: &str = "6.1.4";

/// Environment variable that skips the Python tests.
pub const SKIP_PYTHON_ENV: &str = "TERN_SKIP_PYTHON_INTEROP";

/// The pinned packages of the venv: (distribution, version, a module it
/// must make importable).
const REQUIREMENTS: [(&str, &str, &str); 2] = [
    ("noiseprotocol", NOISEPROTOCOL_VERSION, "noise.connection"),
    ("cbor2", CBOR2_VERSION, "cbor2"),
];

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` if set, else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The Python peer script.
pub fn python_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/noise_peer.py")
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn pins() -> String {
    REQUIREMENTS
        .iter()
        .map(|(name, version, _)| format!("{name}=={version}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Python interpreter of the test venv, creating the venv and
/// installing the pinned packages (`noiseprotocol==0.3.1`,
/// `cbor2==6.1.4`) into it on first use.
///
/// Returns `None` (after saying so) when `TERN_SKIP_PYTHON_INTEROP=1`.
/// Panics with an explanation when the venv cannot be made, so a missing
/// Python side fails the test instead of passing it silently.
///
/// The work is done once per test process (a `OnceLock`), and an exclusive
/// lock on `<target>/interop-venv.lock` keeps concurrent test processes
/// from building the same venv at once.
pub fn python_interpreter() -> Option<PathBuf> {
    if env::var(SKIP_PYTHON_ENV).is_ok_and(|v| v == "1") {
        say(&format!(
            "SKIPPED: Python tests ({SKIP_PYTHON_ENV}=1 is set); nothing was checked with Python"
        ));
        return None;
    }
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(setup_venv) {
        Ok(python) => Some(python.clone()),
        Err(why) => panic!(
            "cannot set up the Python test environment: {why}\n\
             (the Python tests need python3 with venv and pip, and network \
             access to PyPI for {}, the first time; set {SKIP_PYTHON_ENV}=1 to \
             skip them)",
            pins()
        ),
    }
}

/// Writes a line straight to the process's stderr, past the test harness's
/// output capture, so that skips and venv set-up show in a normal run.
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "`{cmd:?}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(mut cmd: Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{cmd:?}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(describe(&cmd, &out))
    }
}

/// Whether `python` imports every pinned package at its pinned version.
fn venv_is_ready(python: &Path) -> bool {
    if !python.exists() {
        return false;
    }
    let mut check = String::from("import importlib, importlib.metadata as m\n");
    for (name, version, module) in REQUIREMENTS {
        check.push_str(&format!(
            "importlib.import_module('{module}')\n\
             assert m.version('{name}') == '{version}', m.version('{name}')\n"
        ));
    }
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(check);
    run(cmd).is_ok()
}

fn setup_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let venv = target.join("interop-venv");
    let python = venv_python(&venv);
    let lock_path = target.join("interop-venv.lock");
    // Held until this function returns (the lock goes with the file).
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    if venv_is_ready(&python) {
        say(&format!(
            "python tests: using existing venv {} ({})",
            venv.display(),
            pins()
        ));
        return Ok(python);
    }

    if !python.exists() {
        if venv.exists() {
            say(&format!(
                "python tests: {} has no interpreter; recreating it",
                venv.display()
            ));
            fs::remove_dir_all(&venv)
                .map_err(|e| format!("cannot remove broken venv {}: {e}", venv.display()))?;
        }
        let base = env::var_os("TERN_PYTHON").unwrap_or_else(|| "python3".into());
        say(&format!(
            "python tests: creating venv {} with `{} -m venv`",
            venv.display(),
            base.to_string_lossy()
        ));
        let mut cmd = Command::new(&base);
        cmd.arg("-m").arg("venv").arg(&venv);
        run(cmd)?;
    }
    // Installs what is missing or at another version (an older venv made
    // for fewer packages is completed, not rebuilt).
    say(&format!(
        "python tests: pip install {} into the venv",
        pins()
    ));
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--timeout",
        "30",
        "--retries",
        "2",
    ]);
    for (name, version, _) in REQUIREMENTS {
        cmd.arg(format!("{name}=={version}"));
    }
    run(cmd)?;
    if !venv_is_ready(&python) {
        return Err(format!(
            "{} still not importable with {} after pip install",
            pins(),
            python.display()
        ));
    }
    say("python tests: venv ready");
    Ok(python)
}
