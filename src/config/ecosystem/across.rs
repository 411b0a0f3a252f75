//! Checks that need every app of the file: unique names, `depends_on` naming apps of the file
//! and free of cycles (the error names the cycle: `a -> b -> a`), `--only` naming apps of the
//! file, and a note when `--env <profile>` selects nothing.

use std::collections::HashMap;

use super::tree::Pos;
use super::{build, first_at, Ctx, LoadOptions};
use crate::config::suggest::did_you_mean;

/// Checks that need every app: unique names, `depends_on`, cycles, `--only`, the profile.
pub fn check_across(ctx: &mut Ctx, drafts: &[build::Draft], opts: &LoadOptions) {
    let mut first_of: HashMap<&str, &build::Draft> = HashMap::new();
    // An app without a name has a problem reported already.
    for draft in drafts.iter().filter(|d| !d.spec.name.is_empty()) {
        let name = draft.spec.name.as_str();
        match first_of.get(name) {
            Some(first) => {
                let pos = draft.name_pos.or(draft.pos);
                let message = format!(
                    "app {name:?}: duplicate name{}",
                    first_at(first.name_pos.or(first.pos))
                );
                ctx.error(pos, message);
            }
            None => {
                first_of.insert(name, draft);
            }
        }
    }
    let names: Vec<&str> = drafts.iter().map(|d| d.spec.name.as_str()).collect();
    let resolve = |wanted: &str| -> Option<usize> {
        if wanted.is_empty() {
            return None;
        }
        (drafts.iter().position(|d| d.spec.name == wanted))
            .or_else(|| drafts.iter().position(|d| d.base_name == wanted))
    };
    let mut edges: Vec<Vec<(usize, Option<Pos>)>> = vec![Vec::new(); drafts.len()];
    for (i, draft) in drafts.iter().enumerate() {
        for (dep, pos) in &draft.depends {
            match resolve(dep) {
                Some(j) => edges[i].push((j, *pos)),
                None => {
                    let hint = did_you_mean(dep, &names)
                        .map(|s| format!(", did you mean {s:?}?"))
                        .unwrap_or_default();
                    let app = &draft.spec.name;
                    ctx.error(
                        *pos,
                        format!(
                            "app {app:?}: `depends_on`: no app named {dep:?} in this file{hint}"
                        ),
                    );
                }
            }
        }
    }
    for cycle in cycles(&edges) {
        let Some(&(first, pos)) = cycle.first() else {
            continue;
        };
        let mut path: Vec<&str> = cycle.iter().map(|(i, _)| names[*i]).collect();
        path.push(names[first]);
        ctx.error(pos, format!("dependency cycle: {}", path.join(" -> ")));
    }
    for wanted in &opts.only {
        if resolve(wanted).is_none() {
            let hint = did_you_mean(wanted, &names)
                .map(|s| format!(", did you mean {s:?}?"))
                .unwrap_or_default();
            ctx.error(
                None,
                format!(
                    "--only: no app named {wanted:?} in this file{hint} (apps: {})",
                    names.join(", ")
                ),
            );
        }
    }
    if let Some(profile) = &opts.profile {
        if !drafts.is_empty() && !drafts.iter().any(|d| d.has_profile) {
            ctx.note(
                None,
                format!("no app has `env_{profile}`; the apps keep their `env`"),
            );
        }
    }
}

/// The cycles of a dependency graph, each once, as (app, position of its edge to the next).
fn cycles(edges: &[Vec<(usize, Option<Pos>)>]) -> Vec<Vec<(usize, Option<Pos>)>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        at: usize,
        edges: &[Vec<(usize, Option<Pos>)>],
        marks: &mut [Mark],
        stack: &mut Vec<(usize, Option<Pos>)>,
        found: &mut Vec<Vec<(usize, Option<Pos>)>>,
    ) {
        marks[at] = Mark::Open;
        for &(next, pos) in &edges[at] {
            stack.push((at, pos));
            match marks[next] {
                Mark::New => visit(next, edges, marks, stack, found),
                Mark::Open => {
                    if let Some(start) = stack.iter().rposition(|(i, _)| *i == next) {
                        found.push(stack[start..].to_vec());
                    }
                }
                Mark::Done => {}
            }
            stack.pop();
        }
        marks[at] = Mark::Done;
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found = Vec::new();
    for start in 0..edges.len() {
        if marks[start] == Mark::New {
            visit(start, edges, &mut marks, &mut Vec::new(), &mut found);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_once() {
        let e = |to: &[usize]| to.iter().map(|t| (*t, None)).collect::<Vec<_>>();
        let graph = vec![e(&[1]), e(&[0]), e(&[2]), e(&[])];
        let found: Vec<Vec<usize>> = cycles(&graph)
            .iter()
            .map(|c| c.iter().map(|(i, _)| *i).collect())
            .collect();
        assert_eq!(found, vec![vec![0, 1], vec![2]]);
    }
}
