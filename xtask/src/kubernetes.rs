//! The Kubernetes example in `deploy/kubernetes/`: every manifest checked against Kubernetes'
//! schemas with `kubernetes-validate --strict` (unknown fields are errors), and
//! `kustomization.yaml` checked to list only files that exist.

use crate::project_root;
use crate::run::{Res, cmd, run};
use std::path::PathBuf;

/// The folder of the example.
fn dir() -> PathBuf {
    project_root().join("deploy/kubernetes")
}

/// The file names listed under `resources:` in `kustomization.yaml`.
fn kustomization_resources(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with([' ', '-']) {
            inside = line.trim_end() == "resources:";
            continue;
        }
        if inside && let Some(item) = line.trim().strip_prefix("- ") {
            found.push(item.trim().to_owned());
        }
    }
    found
}

/// The test step: `kubernetes-validate --strict` over every manifest of `deploy/kubernetes/`
/// (the example Secrets too), and the kustomization's resources exist.
pub fn validate() -> Res {
    crate::setup::python_tools()?;
    let dir = dir();
    let mut manifests: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    manifests.sort();
    if manifests.is_empty() {
        return Err(format!("no manifests in {}", dir.display()));
    }
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml"))
        .map_err(|e| format!("kustomization.yaml: {e}"))?;
    let resources = kustomization_resources(&kustomization);
    if resources.is_empty() {
        return Err("kustomization.yaml lists no resources".into());
    }
    for r in &resources {
        if !manifests.contains(r) {
            return Err(format!(
                "kustomization.yaml lists {r}, which is not in {}",
                dir.display()
            ));
        }
    }
    let mut check = cmd(
        &crate::setup::kubernetes_validate_bin()
            .display()
            .to_string(),
        &["--strict"],
    );
    check.current_dir(&dir).args(&manifests);
    run(check)?;
    println!(
        "kubernetes: {} manifests valid (strict); kustomization.yaml lists {}",
        manifests.len(),
        resources.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::kustomization_resources;

    #[test]
    fn reads_the_resources_list() {
        let text =
            "apiVersion: x\nresources:\n  - a.yaml\n  # note\n  - b.yaml\nimages:\n  - name: c\n";
        assert_eq!(kustomization_resources(text), ["a.yaml", "b.yaml"]);
    }
}
