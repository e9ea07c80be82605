//! `scripts/package-extension`: the store archives hold exactly what the extension runs.

use super::*;
#[test]
fn the_extension_is_packaged_as_a_store_zip_and_a_firefox_xpi_with_every_file_it_runs() {
    let out = tempfile::tempdir().unwrap();
    let (zip, xpi) = extension::package(out.path());
    // Every file of the extension folder except its README, nothing else.
    let src = extension::extension_source();
    let mut want = vec![];
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if rel != "README.md" {
            want.push(rel);
        }
    }
    want.sort();
    assert_eq!(extension::archive_files(&zip), want);
    assert_eq!(extension::archive_files(&xpi), want);
    // The manifest at the root names only files that are in the package.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["manifest_version"], 3);
    assert_eq!(manifest["incognito"], "not_allowed");
    let named = [
        &manifest["background"]["service_worker"],
        &manifest["background"]["scripts"][0],
        &manifest["options_ui"]["page"],
        &manifest["icons"]["128"],
    ];
    for file in named {
        let file = file.as_str().expect("a file name");
        assert!(want.iter().any(|w| w == file), "{file} is not packaged");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
