//! The library's layers point one way: every top-level module has a rank, and a module may name
//! (`crate::…`, `use crate::{…}`) only modules of a lower rank — so the systems import no analysis,
//! no trainer and no family, the shared layers (tensors, data, the training driver) import none of
//! the trainers, and no two modules import each other. Read from the source, test modules left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first.
const RANKS: &[(&str, u32)] = &[
    ("error", 0),
    ("seed", 0),
    ("memory", 1),
    ("io", 2),
    ("plot", 3),
    ("gpu", 3),
    ("tensor", 3),
    // The systems, and the shared layers beside them.
    ("model", 4),
    ("data", 4),
    ("learn", 4),
    // Analyses on any system.
    ("integrate", 5),
    ("stability", 5),
    ("krylov", 5),
    ("fracdiff", 5),
    ("preset", 5),
    ("testing", 5),
    ("fixed_points", 6),
    ("cycles", 6),
    ("lyapunov", 6),
    // Analyses built on the ones above (continuation of equilibria and of cycles), trainers and
    // the sweep.
    ("continuation", 7),
    ("sweep", 7),
    ("nn", 7),
    ("train", 7),
    // Families built on them.
    ("cordsnet", 8),
    ("spiking", 8),
    ("gpu_check", 8),
    // The binaries' command lines, over everything.
    ("cli", 10),
    // The resolver: every source of a system.
    ("source", 9),
];

/// The top-level modules each module of `src/` names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().unwrap() != "bin" {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let text = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text[..],
            };
            let set = out.entry(top.clone()).or_default();
            for line in text.lines() {
                let l = line.trim_start();
                if l.starts_with("//") {
                    continue;
                }
                for (i, _) in l.match_indices("crate::") {
                    let rest = &l[i + 7..];
                    if let Some(group) = rest.strip_prefix('{') {
                        // use crate::{a::x, b, c::{…}}
                        for part in group.split(',') {
                            let name: String = part
                                .trim()
                                .chars()
                                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                                .collect();
                            if !name.is_empty() {
                                set.insert(name);
                            }
                        }
                    } else {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        if !name.is_empty() {
                            set.insert(name);
                        }
                    }
                }
            }
            set.remove(&top);
        }
    }
    out
}

#[test]
fn layers_point_one_way() {
    let rank: BTreeMap<&str, u32> = RANKS.iter().copied().collect();
    let mut wrong = vec![];
    for (module, deps) in imports() {
        let Some(&r) = rank.get(module.as_str()) else {
            wrong.push(format!("{module}: not placed in a layer (add it to RANKS)"));
            continue;
        };
        for d in deps {
            match rank.get(d.as_str()) {
                Some(&q) if q < r => {}
                Some(&q) => wrong.push(format!("{module} (layer {r}) imports {d} (layer {q})")),
                None => wrong.push(format!("{module} imports {d}, which is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The parser above sees the imports it must (a module that names `train` is caught).
#[test]
fn the_layer_reader_sees_imports() {
    let m = imports();
    assert!(m["source"].contains("train"), "{:?}", m["source"]);
    assert!(
        m["nn"].contains("learn") && m["nn"].contains("data"),
        "{:?}",
        m["nn"]
    );
    assert!(!m["model"].contains("train") && !m["model"].contains("lyapunov"));
}
