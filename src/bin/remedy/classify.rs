//! `remedy classify`: classify a failure document and print it as JSON.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use lightflow_remedy::Failure;

use crate::common::bad_input;

pub(crate) fn classify(file: Option<PathBuf>) -> ExitCode {
    let (name, text) = match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => (path.display().to_string(), text),
            Err(e) => return bad_input(format!("classify: {}: {e}", path.display())),
        },
        None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return bad_input(format!("classify: standard input: {e}"));
            }
            ("standard input".to_owned(), text)
        }
    };
    match Failure::from_json(&text, SystemTime::now()) {
        Ok(failure) => match serde_json::to_string_pretty(&failure) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => bad_input(format!("classify: {e}")),
        },
        Err(e) => bad_input(format!("classify: {name}: {e}")),
    }
}
