//! Where the bench files write what Criterion does not (layout tables,
//! peaks, the workload table's JSON): next to Criterion's own output.

use std::path::PathBuf;

/// Writes `text` to `<criterion dir>/<group>/<file>`, where the Criterion
/// directory is Criterion's own choice without its `cargo metadata`
/// fallback: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion`. Says on stderr where it wrote, or why it could not
/// (a bench's figures are still printed; only the file is missing).
pub fn write(group: &str, file: &str, text: &str) {
    let root = if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("criterion")
    } else {
        PathBuf::from("target/criterion")
    };
    let dir = root.join(group);
    let path = dir.join(file);
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
