//! Connection groups on the loop: K members built by racing, streams
//! assigned over them by the policy ([`crate::engine::group`]), failover
//! when a member fails, and a rebuild that races replacements with backoff
//! until K members are back.
//!
//! A build race starts `K - live` attempts at once (distinct candidates
//! first, so members differ where the candidates allow) and keeps its
//! losers: the winner and the spares become members, up to K.
//!
//! [`Groups`] is the loop's table of groups; its operations take the loop
//! and its locked state, since a group's build races run on the loop.

use crate::vocabulary::state::ConnectionState;
use super::conn::{ConnCore, HeldBy};
use super::pool::OwnedSpec;
use super::timers::{GroupId, RaceId, TimerOwner};
use super::protocol::Transport;
use super::{arm_race, lock, LoopCore, LoopState};
use crate::vocabulary::report::AttemptReport;
use crate::vocabulary::error::{Error, Result};
use crate::vocabulary::events::{GroupEvent, GroupEventHandler, GroupEventKind};
use crate::engine::group::{AssignError, GroupPolicy, MemberId, MemberMetrics};
use crate::engine::race::{RaceConfig, RaceError};
use crate::engine::{AttemptId, Micros};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

/// A group's settings, validated by the API layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupConfig {
    pub size: usize,
    pub policy: crate::engine::group::AssignPolicy,
    pub capacity: u32,
    pub backoff_initial: Micros,
    pub backoff_multiplier_percent: u32,
    pub backoff_max: Micros,
}

/// The user's side of a group: its event callback.
pub(crate) struct GroupCore {
    pub id: GroupId,
    events: super::pool::Events<GroupEvent>,
}

impl GroupCore {
    fn emit(&self, e: &GroupEvent) {
        self.events.emit(e);
    }
}

pub(crate) struct GroupEntry {
    policy: GroupPolicy,
    config: GroupConfig,
    spec: OwnedSpec,
    members: HashMap<MemberId, Arc<ConnCore>>,
    /// The build race in flight, if any.
    race: Option<RaceId>,
    backoff: Micros,
    backoff_until: Option<Micros>,
    /// "every member failed" was reported and no member joined since.
    down: bool,
    core: Arc<GroupCore>,
    client: Arc<super::client::Client>,
    armed: Option<Micros>,
}

/// The loop's connection groups, by id: the table, and the groups' part
/// of the loop's work (build races, members, failover, rebuild timers,
/// events). The table is part of the loop's locked state; operations that
/// reach the loop's races, sockets or callbacks take the loop (`lp`) and
/// that state (`st`).
#[derive(Default)]
pub(crate) struct Groups {
    entries: HashMap<GroupId, GroupEntry>,
}

impl Groups {
    fn get(&self, group: &GroupId) -> Option<&GroupEntry> {
        self.entries.get(group)
    }

    fn get_mut(&mut self, group: &GroupId) -> Option<&mut GroupEntry> {
        self.entries.get_mut(group)
    }

    /// Whether the group's timer is armed at `at` (else a heap entry is
    /// stale).
    pub(super) fn is_armed_at(&self, group: GroupId, at: Micros) -> bool {
        self.entries.get(&group).is_some_and(|g| g.armed == Some(at))
    }

    /// The groups `client` made; every group with `None`.
    pub(super) fn ids_of(&self, client: Option<&Arc<super::client::Client>>) -> Vec<GroupId> {
        let made_by = |g: &GroupEntry| client.is_none_or(|c| Arc::ptr_eq(&g.client, c));
        self.entries.iter().filter(|(_, g)| made_by(g)).map(|(id, _)| *id).collect()
    }
}

/// Operations on groups that reach the loop.
impl Groups {
    /// A new group: its first build race starts at once.
    pub(crate) fn create(
        lp: &LoopCore,
        spec: OwnedSpec,
        config: GroupConfig,
        events: Option<GroupEventHandler>,
        client: Arc<super::client::Client>,
    ) -> Result<Arc<GroupCore>> {
        let mut st = lock(&lp.state);
        if st.shut_down {
            return Err(Error::InvalidState);
        }
        let id = st.next_pool_or_group_id;
        st.next_pool_or_group_id += 1;
        let core = Arc::new(GroupCore { id, events: super::pool::Events::new(events) });
        st.groups.entries.insert(
            id,
            GroupEntry {
                policy: GroupPolicy::new(config.policy, config.capacity),
                config,
                spec,
                members: HashMap::new(),
                race: None,
                backoff: 0,
                backoff_until: None,
                down: false,
                core: Arc::clone(&core),
                client,
                armed: None,
            },
        );
        let now = lp.clock.now();
        Groups::step(lp, &mut st, id, now);
        lp.sync_wake_timer(&mut st);
        lp.wake_loop(&st);
        Ok(core)
    }

    fn event(st: &mut LoopState, group: GroupId, kind: GroupEventKind, member: MemberId, streams: u32, connect_time: Micros) {
        log_event(group, kind, member, streams, connect_time);
        if let Some(entry) = st.groups.get(&group) {
            let core = Arc::clone(&entry.core);
            let e = GroupEvent { kind, member: member as u64, streams, connect_time_us: connect_time };
            st.queued_events.push_back((group, Box::new(move || core.emit(&e))));
        }
    }

    /// Start a build race when members are missing and no backoff holds;
    /// re-arm the group's timer.
    pub(super) fn step(lp: &LoopCore, st: &mut LoopState, group: GroupId, now: Micros) {
        let Some(entry) = st.groups.get_mut(&group) else { return };
        let missing = entry.config.size.saturating_sub(entry.policy.live_members());
        let blocked = entry.backoff_until.is_some_and(|t| t > now);
        if missing > 0 && entry.race.is_none() && !blocked {
            entry.backoff_until = None;
            let config = RaceConfig { race_count: missing, keep_losers: true, ..entry.spec.config };
            let owned = OwnedSpec { config, ..entry.spec.clone() };
            // Diversity: the live members' addresses come last.
            let avoid: Vec<SocketAddr> = entry.members.values().filter_map(|m| m.lock().remote()).collect();
            let conn = ConnCore::new(lp.me.upgrade().expect("the loop is alive"), Arc::clone(&entry.client));
            let spec = owned.race(&avoid);
            // Mark the build as started before the race can report back
            // (it may end inside start_race_locked), so that no second
            // race starts meanwhile. Race ids start at 1: 0 is "starting".
            entry.race = Some(0);
            log::info!("group {group}: rebuild started: racing for {missing} missing member(s)");
            let started = lp.start_race_locked(st, &conn, &spec, super::RaceOwner::Group(group));
            let live = started.as_ref().ok().filter(|race| st.races.contains_key(race)).copied();
            if let Some(entry) = st.groups.get_mut(&group) {
                entry.race = live;
            }
            match started {
                Ok(race) if live.is_none() => {
                    // Ended inside start: step again for what it left.
                    let _ = race;
                    return Groups::step(lp, st, group, now);
                }
                Ok(_) => {}
                Err(e) => {
                    log::warn!("group {group}: cannot start a build race: {e}");
                    Groups::race_failed(st, group, now);
                }
            }
        }
        if let Some(entry) = st.groups.get_mut(&group) {
            let missing = entry.config.size > entry.policy.live_members();
            let at = entry.backoff_until.filter(|_| missing && entry.race.is_none());
            match at {
                Some(at) if entry.armed != Some(at) => {
                    entry.armed = Some(at);
                    st.timers.push(at, TimerOwner::Group(group));
                }
                Some(_) => {}
                None => entry.armed = None,
            }
        }
    }

    fn race_failed(st: &mut LoopState, group: GroupId, now: Micros) {
        let Some(entry) = st.groups.get_mut(&group) else { return };
        let c = entry.config;
        entry.backoff = if entry.backoff == 0 {
            c.backoff_initial
        } else {
            (entry.backoff.saturating_mul(c.backoff_multiplier_percent as u64) / 100).min(c.backoff_max)
        };
        entry.backoff_until = Some(now.saturating_add(entry.backoff));
        let backoff = entry.backoff;
        let report_down = entry.policy.live_members() == 0 && !entry.down;
        if report_down {
            entry.down = true;
        }
        Groups::event(st, group, GroupEventKind::RebuildFailed, 0, 0, backoff);
        if report_down {
            Groups::event(st, group, GroupEventKind::AllFailed, 0, 0, 0);
        }
    }

    /// A build race's actions were carried out: members join, the race
    /// ends.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn drive_race(
        lp: &LoopCore,
        st: &mut LoopState,
        id: RaceId,
        group: GroupId,
        end: Option<std::result::Result<AttemptId, RaceError>>,
        spares: Vec<AttemptId>,
        reports: Vec<AttemptReport>,
        now: Micros,
    ) {
        let mut ready: Vec<(Transport, Option<SocketAddr>, Micros)> = Vec::new();
        let mut failed = false;
        {
            let LoopState { races, tokens, timers, .. } = &mut *st;
            let Some(entry) = races.get_mut(&id) else { return };
            let mut take = |entry: &mut super::RaceEntry, a: AttemptId| {
                let remote = entry.tree.attempts().nth(a).map(|x| x.record.candidate.addr);
                let took = reports.get(a).map_or(0, |r| r.ended_us.unwrap_or(0).saturating_sub(r.started_us));
                entry.io.remove(a).map(|io| (lp.to_transport(tokens, io), remote, took))
            };
            match end {
                Some(Ok(a)) => ready.extend(take(entry, a)),
                Some(Err(_)) => failed = true,
                None => {}
            }
            for a in spares {
                ready.extend(take(entry, a));
            }
            arm_race(entry, timers, id);
        }
        for (t, remote, took) in ready {
            Groups::member_ready(lp, st, group, t, remote, took, reports.clone(), now);
        }
        // Enough members: stop the losers still running.
        let full = st.groups.get(&group).is_some_and(|g| g.policy.live_members() >= g.config.size);
        if full {
            if let Some(entry) = st.races.get_mut(&id) {
                if entry.tree.is_finished() && entry.tree.running_count() > 0 {
                    entry.tree.cancel(now);
                    lp.drive(st, id, now);
                    return;
                }
            }
        }
        let done = st.races.get(&id).is_some_and(|e| e.tree.is_finished() && e.tree.running_count() == 0);
        if done {
            lp.remove_race(st, id);
            if let Some(g) = st.groups.get_mut(&group) {
                if g.race == Some(id) {
                    g.race = None;
                }
            }
        }
        if failed {
            Groups::race_failed(st, group, now);
        }
        Groups::step(lp, st, group, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn member_ready(
        lp: &LoopCore,
        st: &mut LoopState,
        group: GroupId,
        transport: Transport,
        remote: Option<SocketAddr>,
        connect_time: Micros,
        reports: Vec<AttemptReport>,
        now: Micros,
    ) {
        let room = st.groups.get(&group).is_some_and(|g| g.policy.live_members() < g.config.size);
        if !room {
            lp.close_transport(st, transport);
            return;
        }
        let Some(entry) = st.groups.get_mut(&group) else { return };
        let member = entry.policy.add_member(now, connect_time);
        entry.backoff = 0;
        entry.backoff_until = None;
        let recovered = std::mem::take(&mut entry.down);
        let conn = ConnCore::new(lp.me.upgrade().expect("the loop is alive"), Arc::clone(&entry.client));
        {
            let mut c = conn.lock();
            c.race_result().attempts = reports.into();
            c.held_by = Some(HeldBy::Group(group, u32::try_from(member).unwrap_or(u32::MAX)));
            let LoopState { tokens, .. } = &mut *st;
            lp.install(tokens, &conn, &mut c, transport, remote);
        }
        if let Some(entry) = st.groups.get_mut(&group) {
            entry.members.insert(member, conn);
        }
        Groups::event(st, group, GroupEventKind::MemberJoined, member, 0, connect_time);
        if recovered {
            Groups::event(st, group, GroupEventKind::Recovered, member, 0, 0);
        }
    }

    /// A member failed (its socket, or the caller said so): it leaves the
    /// rotation, its connection closes, the group rebuilds.
    pub(super) fn member_lost(lp: &LoopCore, st: &mut LoopState, group: GroupId, member: MemberId, now: Micros) {
        let Some(entry) = st.groups.get_mut(&group) else { return };
        if !entry.policy.is_live(member) {
            return;
        }
        let streams = entry.policy.member_failed(member);
        let conn = entry.members.remove(&member);
        let all_down = entry.policy.live_members() == 0 && !entry.down;
        if all_down {
            entry.down = true;
        }
        if let Some(conn) = conn {
            Groups::close_member(lp, st, &conn);
        }
        Groups::event(st, group, GroupEventKind::MemberFailed, member, streams, 0);
        if all_down {
            Groups::event(st, group, GroupEventKind::AllFailed, 0, 0, 0);
        }
        Groups::step(lp, st, group, now);
    }

    /// A group's timer fired (a backoff ended).
    pub(super) fn timer(lp: &LoopCore, st: &mut LoopState, group: GroupId, at: Micros, now: Micros) {
        let Some(entry) = st.groups.get_mut(&group) else { return };
        if entry.armed != Some(at) {
            return;
        }
        entry.armed = None;
        Groups::step(lp, st, group, now);
    }

    /// Run `f` on a group's entry with the state locked.
    fn with<R>(lp: &LoopCore, group: GroupId, f: impl FnOnce(&mut GroupEntry) -> R) -> Result<R> {
        let mut st = lock(&lp.state);
        st.groups.get_mut(&group).map(f).ok_or(Error::InvalidState)
    }

    /// The member for the next stream.
    pub(crate) fn assign(lp: &LoopCore, group: GroupId) -> Result<MemberId> {
        Groups::with(lp, group, |g| g.policy.assign())?.map_err(|e| match e {
            AssignError::NoMember => Error::NoMember,
            AssignError::AllFull => Error::AllMembersFull,
        })
    }

    /// A stream on `member` ended.
    pub(crate) fn release_stream(lp: &LoopCore, group: GroupId, member: MemberId, failed: bool) -> Result<()> {
        Groups::with(lp, group, |g| {
            if g.policy.metrics(member).is_some_and(|m| m.streams_open > 0) {
                g.policy.release(member, failed);
                Ok(())
            } else {
                Err(Error::InvalidArgument("no open stream on that member"))
            }
        })?
    }

    /// The caller says a member failed.
    pub(crate) fn mark_failed(lp: &LoopCore, group: GroupId, member: MemberId) -> Result<()> {
        let mut st = lock(&lp.state);
        let live = st.groups.get(&group).ok_or(Error::InvalidState)?.policy.is_live(member);
        if !live {
            return Err(Error::InvalidArgument("not a live member of the group"));
        }
        let now = lp.clock.now();
        Groups::member_lost(lp, &mut st, group, member, now);
        lp.sync_wake_timer(&mut st);
        lp.wake_loop(&st);
        Ok(())
    }

    /// A member's weight for the weighted policy.
    pub(crate) fn set_weight(lp: &LoopCore, group: GroupId, member: MemberId, weight: u32) -> Result<()> {
        Groups::with(lp, group, |g| {
            if g.policy.metrics(member).is_none() {
                return Err(Error::InvalidArgument("not a member of the group"));
            }
            g.policy.set_weight(member, weight);
            Ok(())
        })?
    }

    /// A member's metrics (failed members too).
    pub(crate) fn metrics(lp: &LoopCore, group: GroupId, member: MemberId) -> Result<MemberMetrics> {
        Groups::with(lp, group, |g| g.policy.metrics(member))?.ok_or(Error::InvalidArgument("not a member of the group"))
    }

    /// A live member's fd and remote address.
    pub(crate) fn member(lp: &LoopCore, group: GroupId, member: MemberId) -> Result<(Option<RawFd>, Option<SocketAddr>)> {
        Groups::with(lp, group, |g| {
            g.members.get(&member).map(|c| {
                let c = c.lock();
                (c.transport().and_then(|t| t.fd()), c.remote())
            })
        })?
        .ok_or(Error::InvalidArgument("not a live member of the group"))
    }

    /// Live members, in join order.
    pub(crate) fn members(lp: &LoopCore, group: GroupId) -> Vec<MemberId> {
        Groups::with(lp, group, |g| g.policy.members()).unwrap_or_default()
    }

    /// Free a group: its race is cancelled, its members closed; no event
    /// follows.
    pub(crate) fn free(lp: &LoopCore, group: GroupId) {
        let mut st = lock(&lp.state);
        Groups::free_locked(lp, &mut st, group);
        lp.sync_wake_timer(&mut st);
        lp.wake_loop(&st);
    }

    /// Close a member's connection: it is no longer the group's, and its
    /// socket closes.
    fn close_member(lp: &LoopCore, st: &mut LoopState, conn: &Arc<ConnCore>) {
        let t = {
            let mut c = conn.lock();
            c.phase = ConnectionState::Closed;
            c.held_by = None;
            c.take_transport()
        };
        if let Some(t) = t {
            lp.close_transport(st, t);
        }
    }

    /// [`Groups::free`] with the state locked.
    pub(super) fn free_locked(lp: &LoopCore, st: &mut LoopState, group: GroupId) {
        let Some(entry) = st.groups.entries.remove(&group) else { return };
        entry.core.events.silence();
        st.queued_events.retain(|(owner, _)| *owner != group);
        if let Some(race) = entry.race {
            lp.cancel_race(st, race);
        }
        for (_, conn) in entry.members {
            Groups::close_member(lp, st, &conn);
        }
    }
}

/// Log a group event (info): members joining and failing (failover),
/// rebuilds failing (with their backoff), recovery.
fn log_event(group: GroupId, kind: GroupEventKind, member: MemberId, streams: u32, time: Micros) {
    use super::race::Ms;
    match kind {
        GroupEventKind::MemberJoined => log::info!("group {group}: member {member} joined (connected in {})", Ms(time)),
        GroupEventKind::MemberFailed => {
            log::info!("group {group}: member {member} failed with {streams} stream(s): failover to the others")
        }
        GroupEventKind::AllFailed => log::info!("group {group}: no live member left"),
        GroupEventKind::Recovered => log::info!("group {group}: recovered"),
        GroupEventKind::RebuildFailed => log::info!("group {group}: rebuild failed; next try in {}", Ms(time)),
    }
}
