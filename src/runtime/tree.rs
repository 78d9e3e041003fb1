//! The candidate tree of a race (RFC 9623 §4.1): paths × protocols kept
//! and ordered by the selection properties, with their racing types; the
//! tree of a race on the default path alone is built once and shared.

use crate::engine::select::{self, InterfaceMatch, InterfaceType};
use crate::engine::tree::{PathBranch, ProtocolBranch, RacingType};
use super::paths::{self, Path};
use super::protocol::ProtocolEntry;
use super::race::{RacePath, RaceSpec};
use super::LoopState;
use std::sync::Arc;

/// What the candidate tree of a race on the default path alone (no local
/// endpoint, no interface preference) depends on: the protocol selection
/// properties, the racing types of paths and protocols, and the registered
/// protocols (which only grow, so their number tells them).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct DefaultTreeKey {
    selection: [select::Preference; 3],
    path: RacingType,
    protocol: RacingType,
    protocols: usize,
}

/// The paths and candidate tree of a race (see [`build_tree`]). Most races
/// take the default path alone: their tree depends on a few properties
/// only, and is built once for as long as those stay the same (no
/// allocation, no selection per race). The default path is the loop's,
/// shared by every race that takes it.
pub(super) fn race_tree(st: &mut LoopState, spec: &RaceSpec<'_>) -> (Arc<[RacePath]>, Arc<[PathBranch]>) {
    let sel = spec.selection;
    let default_only = spec.locals.is_empty() && sel.interfaces.is_empty();
    let key = DefaultTreeKey {
        selection: [sel.reliability, sel.preserve_msg_boundaries, sel.multistreaming],
        path: spec.racing.path,
        protocol: spec.racing.protocol,
        protocols: st.protocols.len(),
    };
    if default_only {
        if let Some((k, branches)) = &st.default_tree {
            if *k == key {
                return (Arc::clone(&st.default_paths), Arc::clone(branches));
            }
        }
    }
    let (paths, branches) = build_tree(&st.protocols, spec);
    let branches: Arc<[PathBranch]> = branches.into();
    if paths.len() == 1 && paths[0] == st.default_paths[0].path {
        if default_only {
            st.default_tree = Some((key, Arc::clone(&branches)));
        }
        (Arc::clone(&st.default_paths), branches)
    } else {
        (paths.into_iter().map(RacePath::new).collect(), branches)
    }
}

/// The candidate tree of a race: paths and protocols kept and ordered by
/// the selection properties (RFC 9623 §4.1, §5), with their racing types
/// (§4.3; a branch that hits an Avoid races as failover behind the
/// others). Returns the paths and the tree's branches (path ids index
/// the returned paths, protocol ids the `registered` protocols).
pub(super) fn build_tree(registered: &[Arc<ProtocolEntry>], spec: &RaceSpec<'_>) -> (Vec<Path>, Vec<PathBranch>) {
    let sel = spec.selection;
    let names_loopback = sel.interfaces.iter().any(|(m, p)| {
        matches!(p, select::Preference::Require | select::Preference::Prefer)
            && match m {
                InterfaceMatch::Name(n) => n == "lo",
                InterfaceMatch::Type(t) => *t == InterfaceType::Loopback,
            }
    });
    let paths = paths::candidate_paths(spec.locals, !sel.interfaces.is_empty(), names_loopback);
    let path_traits: Vec<_> = paths.iter().map(Path::traits).collect();
    let chosen_paths = select::select_paths(sel, &path_traits);
    let traits: Vec<_> = registered.iter().map(|p| p.traits).collect();
    let chosen_protocols = select::select_protocols(sel, &traits);
    let level = |chosen: &[select::Selected], racing: RacingType| -> Vec<RacingType> {
        chosen
            .iter()
            .enumerate()
            .map(|(i, c)| if i > 0 && c.avoided && !chosen[i - 1].avoided { RacingType::Failover } else { racing })
            .collect()
    };
    let protocol_racing = level(&chosen_protocols, spec.racing.protocol);
    let path_racing = level(&chosen_paths, spec.racing.path);
    let branches = if chosen_protocols.is_empty() {
        Vec::new()
    } else {
        chosen_paths
            .iter()
            .zip(path_racing)
            .map(|(c, racing)| PathBranch {
                path: c.index,
                racing,
                protocols: chosen_protocols
                    .iter()
                    .zip(&protocol_racing)
                    .map(|(c, &racing)| ProtocolBranch { protocol: c.index, racing })
                    .collect(),
            })
            .collect()
    };
    (paths, branches)
}
