//! What users look for beside the code agrees with the manifests: the licence files the workspace's
//! `license` expression names, a `CITATION.cff` and a `CHANGELOG.md` section for the workspace's version.
//! (`scripts/test-python.sh` validates `CITATION.cff` against the CFF schema.)

#![allow(clippy::unwrap_used)]

fn repo(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn licence_files_match_the_manifest() {
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT OR Apache-2.0");
    assert!(repo("LICENSE-MIT").contains("Permission is hereby granted, free of charge"));
    let apache = repo("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    let citation = repo("CITATION.cff");
    assert!(citation.contains("\n  - MIT\n  - Apache-2.0\n"), "CITATION.cff names both licences");
}

#[test]
fn citation_and_changelog_name_this_version() {
    let version = env!("CARGO_PKG_VERSION");
    let citation = repo("CITATION.cff");
    assert!(citation.lines().any(|l| l == format!("version: {version}")), "CITATION.cff's version is not {version}");
    assert!(citation.contains("arXiv:2307.14023"), "CITATION.cff cites the paper");
    assert!(repo("CHANGELOG.md").contains(&format!("## [{version}]")), "CHANGELOG.md has no section for {version}");
}
