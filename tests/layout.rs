//! The layout shows the architecture: the folders are the layers (classify, decide, store, engine, operate,
//! lightflow, serve:
//! each uses only the ones before it), no two files import each other (nor any longer circle), and no file grows past 700 lines (past 500, it says at its top why it is
//! one file).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A module path inside the crate, e.g. `["engine", "job"]`; the crate root is empty.
type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    text: String,
}

fn modules() -> BTreeMap<ModPath, Module> {
    let mut out = BTreeMap::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if !path.ends_with("bin") {
                    dirs.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).expect("under src").with_extension("");
            let mut parts: ModPath = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            out.insert(parts, Module { file: path, text });
        }
    }
    out
}

/// The code of a file without its tests, comments and string literals.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut in_string = false;
        let mut escaped = false;
        for c in line.chars() {
            match (in_string, escaped, c) {
                (true, false, '\\') => escaped = true,
                (true, false, '"') => in_string = false,
                (true, _, _) => escaped = false,
                (false, _, '"') => in_string = true,
                (false, _, c) => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

/// `a::{b, c::{d, e}}` as the paths `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let base = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&inner[start..i], &base, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand(&inner[start..], &base, out);
    }
}

/// Every path a file names: its `use` trees, and `crate::`, `super::` and `self::` paths in its code. A
/// folder's `mod.rs` (and `lib.rs`) re-exports are its API, not imports.
fn paths(module: &ModPath, text: &str, children: &BTreeSet<String>) -> Vec<String> {
    let is_folder = text.is_empty() || module.is_empty() || children.iter().next().is_some();
    let mut code = code(text);
    if is_folder {
        code = code
            .split(';')
            .filter(|stmt| {
                let s = after_attributes(stmt);
                !(s.starts_with("pub use") || s.starts_with("pub(crate) use"))
            })
            .collect::<Vec<_>>()
            .join(";");
    }
    let mut out = Vec::new();
    // `use` trees: from a line that starts with `use` (or `pub use`, `pub(crate) use`) to the next `;`.
    let mut rest = code.as_str();
    while let Some(line_start) = next_use(rest) {
        let stmt = &rest[line_start..];
        let end = stmt.find(';').unwrap_or(stmt.len());
        let tree: String =
            stmt[stmt.find("use ").map_or(0, |i| i + 4)..end].chars().filter(|c| !c.is_whitespace()).collect();
        expand(&tree, "", &mut out);
        rest = &stmt[end..];
    }
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if boundary && (bytes[i].is_alphabetic() || bytes[i] == '_') {
            let start = i;
            while i < bytes.len() && (bytes[i].is_alphanumeric() || bytes[i] == '_' || bytes[i] == ':') {
                i += 1;
            }
            let path: String = bytes[start..i].iter().collect();
            let first = path.split("::").next().unwrap_or_default();
            if path.contains("::") && (matches!(first, "crate" | "super" | "self") || children.contains(first)) {
                out.push(path.trim_end_matches(':').to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A statement without its leading attributes: `#[cfg(feature = "x")] pub use a::B` is a re-export too.
fn after_attributes(stmt: &str) -> &str {
    let mut s = stmt.trim_start();
    while let Some(rest) = s.strip_prefix("#[") {
        let mut depth = 1;
        let end = rest.char_indices().find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        });
        match end {
            Some(i) => s = rest[i + 1..].trim_start(),
            None => return s,
        }
    }
    s
}

/// Where the next line that starts a `use` begins.
fn next_use(text: &str) -> Option<usize> {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("use ")
            || t.starts_with("pub use ")
            || t.starts_with("pub(crate) use ")
            || t.starts_with("pub(super) use ")
        {
            return Some(at + (line.len() - t.len()));
        }
        at += line.len();
    }
    None
}

/// What a name re-exported by a folder's `mod.rs` (or `lib.rs`) stands for.
fn reexports(mods: &BTreeMap<ModPath, Module>) -> HashMap<(ModPath, String), ModPath> {
    let mut out = HashMap::new();
    for (module, m) in mods {
        for stmt in code(&m.text).split(';') {
            let s = after_attributes(stmt);
            let Some(tree) = s.strip_prefix("pub use ").or_else(|| s.strip_prefix("pub(crate) use ")) else {
                continue;
            };
            let mut paths = Vec::new();
            expand(&tree.chars().filter(|c| !c.is_whitespace()).collect::<String>(), "", &mut paths);
            for path in paths {
                let path = path.split(" as ").next().unwrap_or_default().to_owned();
                let segs: Vec<String> = path.split("::").map(str::to_owned).collect();
                let Some(name) = segs.last().cloned() else { continue };
                out.insert((module.clone(), name), absolute(module, &segs, &BTreeSet::new(), true));
            }
        }
    }
    out
}

fn absolute(module: &ModPath, segs: &[String], children: &BTreeSet<String>, relative_to_self: bool) -> ModPath {
    match segs.first().map(String::as_str) {
        Some("crate") => segs[1..].to_vec(),
        Some("super") => {
            let mut base = module.clone();
            let mut rest = segs;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend_from_slice(rest);
            base
        }
        Some("self") => module.iter().chain(&segs[1..]).cloned().collect(),
        Some(first) if relative_to_self || children.contains(first) => module.iter().chain(segs).cloned().collect(),
        _ => Vec::new(),
    }
}

/// The file that defines what `path` names, through re-exports.
fn resolve(
    path: &[String],
    mods: &BTreeMap<ModPath, Module>,
    reexp: &HashMap<(ModPath, String), ModPath>,
    depth: usize,
) -> Option<ModPath> {
    for n in (0..=path.len()).rev() {
        let prefix = path[..n].to_vec();
        if mods.contains_key(&prefix) {
            if n < path.len()
                && depth < 10
                && let Some(target) = reexp.get(&(prefix.clone(), path[n].clone()))
            {
                let mut next = target.clone();
                next.extend_from_slice(&path[n + 1..]);
                return resolve(&next, mods, reexp, depth + 1);
            }
            return Some(prefix);
        }
    }
    None
}

fn edges(mods: &BTreeMap<ModPath, Module>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let reexp = reexports(mods);
    let mut out: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, m) in mods {
        let children: BTreeSet<String> = mods
            .keys()
            .filter(|k| k.len() == module.len() + 1 && k.starts_with(module))
            .filter_map(|k| k.last().cloned())
            .collect();
        for path in paths(module, &m.text, &children) {
            let segs: Vec<String> = path.split("::").map(str::to_owned).collect();
            let abs = absolute(module, &segs, &children, false);
            if abs.is_empty() && segs.first().is_none_or(|s| s != "crate") {
                continue;
            }
            if let Some(target) = resolve(&abs, mods, &reexp, 0)
                && target != *module
            {
                out.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    out
}

fn name(mods: &BTreeMap<ModPath, Module>, m: &ModPath) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    mods[m].file.strip_prefix(root).unwrap_or(&mods[m].file).display().to_string()
}

/// Circles of imports, by Tarjan's strongly connected components.
fn circles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>, all: &[ModPath]) -> Vec<Vec<ModPath>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: HashMap<ModPath, usize>,
        low: HashMap<ModPath, usize>,
        stack: Vec<ModPath>,
        on: BTreeSet<ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn strong(w: &mut Walk<'_>, v: &ModPath) {
        let i = w.index.len();
        w.index.insert(v.clone(), i);
        w.low.insert(v.clone(), i);
        w.stack.push(v.clone());
        w.on.insert(v.clone());
        for next in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(next) {
                strong(w, next);
                let l = w.low[v].min(w.low[next]);
                w.low.insert(v.clone(), l);
            } else if w.on.contains(next) {
                let l = w.low[v].min(w.index[next]);
                w.low.insert(v.clone(), l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut circle = Vec::new();
            while let Some(top) = w.stack.pop() {
                w.on.remove(&top);
                let done = top == *v;
                circle.push(top);
                if done {
                    break;
                }
            }
            if circle.len() > 1 {
                w.out.push(circle);
            }
        }
    }
    let mut w = Walk {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in all {
        if !w.index.contains_key(v) {
            strong(&mut w, v);
        }
    }
    w.out
}

#[test]
fn no_circle_of_imports_and_imports_run_down_the_layers() {
    let mods = modules();
    let edges = edges(&mods);
    let all: Vec<ModPath> = mods.keys().cloned().collect();
    let mut problems = Vec::new();
    for circle in circles(&edges, &all) {
        problems.push(format!("circle: {}", circle.iter().map(|m| name(&mods, m)).collect::<Vec<_>>().join(" · ")));
    }
    let layer = |m: &ModPath| match m.first().map(String::as_str) {
        Some("classify") => Some(0),
        Some("decide") => Some(1),
        Some("store") => Some(2),
        Some("engine") => Some(3),
        Some("operate") => Some(4),
        Some("lightflow") => Some(5),
        Some("serve") => Some(6),
        _ => None,
    };
    for (from, targets) in &edges {
        for to in targets {
            if let (Some(a), Some(b)) = (layer(from), layer(to))
                && b > a
            {
                problems.push(format!("upward: {} uses {}", name(&mods, from), name(&mods, to)));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check sees imports at all: the engine uses decide, and decide uses classify.
    let uses = |a: &[&str], b: &[&str]| {
        let a: ModPath = a.iter().map(|s| s.to_string()).collect();
        let b: ModPath = b.iter().map(|s| s.to_string()).collect();
        edges.get(&a).is_some_and(|t| t.contains(&b))
    };
    assert!(uses(&["engine", "walk"], &["decide", "decision"]));
    assert!(uses(&["decide", "walk"], &["classify", "failure"]));
}

#[test]
fn the_folders_are_the_layers_and_files_stay_short() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut top: Vec<String> = std::fs::read_dir(&src)
        .expect("src")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    for folder in ["classify", "decide", "engine", "operate", "bin"] {
        assert!(src.join(folder).is_dir(), "src/{folder}/ is missing");
    }
    let allowed = [
        "classify",
        "decide",
        "engine",
        "store",
        "operate",
        "lightflow",
        "serve",
        "bin",
        "lib.rs",
        "diagnostic.rs",
        "names.rs",
    ];
    let allowed_more = ["millis.rs", "testing.rs", "doc_tests.rs"];
    for entry in &top {
        assert!(
            allowed.contains(&entry.as_str()) || allowed_more.contains(&entry.as_str()),
            "src/{entry} belongs in one of the layers' folders"
        );
    }
    for (module, m) in modules() {
        let lines = m.text.lines().count();
        assert!(lines <= 700, "{} has {lines} lines (at most 700)", m.file.display());
        if lines > 500 {
            let head: String = m.text.lines().take(12).collect::<Vec<_>>().join("\n");
            assert!(
                head.contains("one file"),
                "{} ({module:?}) has {lines} lines: say at its top why it is one file, or split it",
                m.file.display()
            );
        }
    }
}
