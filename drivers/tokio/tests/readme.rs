//! The README's tokio quick start is the code of `examples/quickstart.rs`
//! (which `cargo test` compiles), word for word.

#[test]
fn readme_quickstart_matches_the_example() {
    let example = include_str!("../examples/quickstart.rs");
    let readme = include_str!("../../../README.md");
    let begin = example.find("// README-BEGIN\n").expect("begin marker") + 16;
    let end = example.find("// README-END").expect("end marker");
    let snippet = &example[begin..end];
    assert!(
        readme.contains(&format!("```rust\n{snippet}```")),
        "README.md must show examples/quickstart.rs between its markers:\n{snippet}"
    );
}
