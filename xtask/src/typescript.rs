//! The package's TypeScript definitions, checked as a frontend team meets them: every
//! ```` ```ts ```` and ```` ```tsx ```` example of the README (the React ones with
//! `@types/react`), verbatim, type-checked with `tsc --strict` against
//! the packed tarball (`tests/fixtures/ts-strict`, its TypeScript versions locked there), with
//! and without `skipLibCheck`, in TypeScript 5.9 and 7.0.

use crate::project_root;
use crate::run::{Res, Totals, cmd, run};
use std::path::Path;

/// The compilers of the fixture, by the version they are.
const COMPILERS: [(&str, &str); 2] = [
    ("5.9", "node_modules/typescript/bin/tsc"),
    ("7.0", "node_modules/typescript7/bin/tsc"),
];

/// The fixture's configurations: strict with the library checked, and with `skipLibCheck`.
const CONFIGS: [&str; 2] = ["tsconfig.json", "tsconfig.skiplib.json"];

/// The README's TypeScript examples in order, each with its file extension (`ts` or `tsx`).
pub fn readme_examples(readme: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find("\n```ts") {
        let after = &rest[start + "\n```ts".len()..];
        let (ext, body) = if let Some(b) = after.strip_prefix("x\n") {
            ("tsx", b)
        } else if let Some(b) = after.strip_prefix('\n') {
            ("ts", b)
        } else {
            rest = after;
            continue;
        };
        let Some(end) = body.find("\n```") else { break };
        out.push((ext, format!("{}\n", &body[..end])));
        rest = &body[end + "\n```".len()..];
    }
    out
}

/// Installs the packed tarball into the fixture, writes the README's examples into its `src/`
/// and type-checks them with each compiler and configuration; each combination is a test.
pub fn check(totals: &mut Totals) -> Res {
    let dir = project_root().join("tests/fixtures/ts-strict");
    let tarball = crate::package::tarball()?;
    let mut install = cmd("npm", &["install", "--no-save", "--no-audit", "--no-fund"]);
    install.arg(&tarball).current_dir(&dir);
    run(install)?;
    let readme = std::fs::read_to_string(project_root().join("README.md"))
        .map_err(|e| format!("README.md: {e}"))?;
    let examples = readme_examples(&readme);
    if examples.is_empty() {
        return Err("the README has no ```ts example to check".into());
    }
    write_examples(&dir.join("src"), &examples)?;
    let mut failed = Vec::new();
    for (version, tsc) in COMPILERS {
        for config in CONFIGS {
            let mut c = cmd("node", &[tsc, "-p", config]);
            c.current_dir(&dir);
            match run(c) {
                Ok(()) => totals.passed += 1,
                Err(e) => {
                    totals.failed += 1;
                    failed.push(format!("TypeScript {version} with {config}: {e}"));
                }
            }
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(failed.join("; ")),
    }
}

fn write_examples(src: &Path, examples: &[(&str, String)]) -> Res {
    let _ = std::fs::remove_dir_all(src);
    std::fs::create_dir_all(src).map_err(|e| format!("{}: {e}", src.display()))?;
    for (i, (ext, text)) in examples.iter().enumerate() {
        let path = src.join(format!("readme-{}.{ext}", i + 1));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::readme_examples;

    #[test]
    fn finds_each_ts_block_and_nothing_else() {
        let md = "intro\n```ts\nconst a = 1;\n```\n\n```js\nno\n```\n```tsx\nlet b = <p />;\n```\n```ts\nlet c: string;\nc = \"\";\n```\n";
        assert_eq!(
            readme_examples(md),
            [
                ("ts", "const a = 1;\n".to_owned()),
                ("tsx", "let b = <p />;\n".to_owned()),
                ("ts", "let c: string;\nc = \"\";\n".to_owned())
            ]
        );
        assert!(readme_examples("```ts\nunterminated").is_empty());
    }
}
