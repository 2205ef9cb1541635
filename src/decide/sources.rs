//! Reading policy sources from a directory: its `*.rhai` files by name, each size-checked before it is read
//! and read again if it changed while it was read, with a bound on how many there may be.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::script::limits;
use super::script::loader::Source;

/// How many times a file that changes while it is read is read again.
const READ_ATTEMPTS: usize = 3;

/// The `*.rhai` files of `dir` (not its subdirectories), sorted by file name; unreadable ones carry their
/// error, and so does a directory that cannot be listed or holds too many files.
pub(crate) fn read_directory(dir: &Path) -> Vec<Source> {
    let refused = |message: String| {
        vec![Source { name: Arc::from(dir.display().to_string()), text: Err(message), built_in: false }]
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return refused(format!("cannot read the policies directory: {e}")),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for (seen, entry) in entries.enumerate() {
        if seen >= limits::MAX_ENTRIES {
            return refused(format!(
                "the policies directory holds more than {} entries; keep only policy files in it",
                limits::MAX_ENTRIES
            ));
        }
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        // Regular files only (following links): a FIFO or a device named `x.rhai` is not a policy.
        if path.extension().is_some_and(|x| x == "rhai") && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            paths.push(path);
        }
        if paths.len() > limits::MAX_FILES {
            return refused(format!("the policies directory holds more than {} policy files", limits::MAX_FILES));
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths
        .into_iter()
        .map(|path| Source { name: Arc::from(path.display().to_string()), text: read_file(&path), built_in: false })
        .collect()
}

/// The text of one policy file: refused from its size alone when too large, and read again when it changed
/// while it was read (an editor or a deployment writing it), so that a half-written file is not taken for the
/// whole.
pub(crate) fn read_file(path: &Path) -> Result<String, String> {
    let unreadable = |e: std::io::Error| format!("cannot read the policy file: {e}");
    for _ in 0..READ_ATTEMPTS {
        let before = stamp(path).map_err(unreadable)?;
        if before.0 > limits::MAX_FILE_SIZE {
            return Err(too_large(before.0));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(limits::MAX_FILE_SIZE + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > limits::MAX_FILE_SIZE {
            return Err(too_large(bytes.len() as u64));
        }
        if stamp(path).map_err(unreadable)? == before && bytes.len() as u64 == before.0 {
            return String::from_utf8(bytes)
                .map_err(|_| "cannot read the policy file: stream did not contain valid UTF-8".to_owned());
        }
    }
    Err(format!("the policy file kept changing while it was read ({READ_ATTEMPTS} times); it is not loaded"))
}

fn too_large(bytes: u64) -> String {
    format!("the file is {bytes} bytes; policy files are limited to {} bytes", limits::MAX_FILE_SIZE)
}

/// What tells a file's versions apart without reading it: its length and modification time.
fn stamp(path: &Path) -> std::io::Result<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(path)?;
    Ok((m.len(), m.modified().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_size_checked_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.rhai");
        // A sparse file: its size says no before a byte of it is read.
        std::fs::File::create(&huge).unwrap().set_len(3 << 30).unwrap();
        let started = std::time::Instant::now();
        let err = read_file(&huge).unwrap_err();
        assert!(err.contains("limited to"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn too_many_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=limits::MAX_FILES {
            std::fs::write(dir.path().join(format!("{i:04}.rhai")), "").unwrap();
        }
        let sources = read_directory(dir.path());
        assert_eq!(sources.len(), 1);
        assert!(sources[0].text.as_ref().unwrap_err().contains("more than"), "{:?}", sources[0].text);
    }
}
