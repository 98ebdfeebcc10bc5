//! Python tools the tests drive (schemathesis, openapi-python-client): each installed on first
//! use, pinned, into a virtual environment of its own under `target/`, so `cargo test
//! --workspace` needs nothing but Python 3 and the network to PyPI the first time.

use std::path::PathBuf;
use std::process::Command;

/// Cargo's target directory, where the environments and the tools' working files go.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

/// The virtual environment holding `package==version`, installing it when `executable` is not
/// in its `bin/` yet.
pub fn environment(package: &str, version: &str, executable: &str) -> PathBuf {
    let venv = target_dir().join(format!("{package}-{version}"));
    if venv.join("bin").join(executable).is_file() {
        return venv;
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 runs");
    assert!(created.success(), "python3 -m venv failed");
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("{package}=={version}"))
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip install {package}=={version} failed"
    );
    venv
}
