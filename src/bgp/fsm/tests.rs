//! Tests of the FSM with a fake clock: every instant is `t0 + something`.

use super::*;
use crate::bgp::packet::{MESSAGE_HEADER_ERROR, UPDATE_MESSAGE_ERROR};

const ALL_STATES: [State; 6] = [
    State::Idle,
    State::Connect,
    State::Active,
    State::OpenSent,
    State::OpenConfirm,
    State::Established,
];

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config(passive: bool, hold_time: u16) -> Config {
    Config {
        passive,
        hold_time,
        connect_retry: s(1),
        idle_hold: s(5),
        idle_hold_max: s(120),
    }
}

fn fsm() -> Fsm {
    Fsm::new(config(false, 90))
}

fn admin_shutdown() -> Notification {
    Notification::new(CEASE, 2)
}

fn send_drop(n: Notification) -> Vec<Action> {
    vec![Action::SendNotification(n), Action::Drop]
}

fn is_down(a: &Action) -> bool {
    matches!(a, Action::SessionDown { .. })
}

/// Drives an FSM from Idle to `target` at `now`; the peer proposes `peer_hold`.
fn drive(f: &mut Fsm, now: Instant, target: State, peer_hold: u16) {
    let path: &[(State, Event)] = &[
        (State::Idle, Event::ManualStart),
        (State::Connect, Event::TcpFailed),
        (State::Active, Event::TcpConnected),
        (
            State::OpenSent,
            Event::OpenReceived {
                hold_time: peer_hold,
            },
        ),
        (State::OpenConfirm, Event::KeepaliveReceived),
    ];
    for (from, ev) in path {
        if f.state() == target {
            return;
        }
        if f.state() == *from {
            f.handle(now, ev.clone());
        }
    }
    assert_eq!(f.state(), target);
}

fn at(target: State, now: Instant) -> Fsm {
    let mut f = fsm();
    drive(&mut f, now, target, 90);
    f
}

fn passive_at(target: State, now: Instant) -> Fsm {
    let mut f = Fsm::new(config(true, 90));
    drive(&mut f, now, target, 90);
    f
}

#[test]
fn state_strings() {
    let names: Vec<&str> = ALL_STATES.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "idle",
            "connect",
            "active",
            "opensent",
            "openconfirm",
            "established"
        ]
    );
    assert_eq!(State::OpenSent.to_string(), "opensent");
}

#[test]
fn new_is_idle_and_inert() {
    let t0 = Instant::now();
    let mut f = fsm();
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.next_deadline(), None);
    assert_eq!(f.last_change(), None);
    assert_eq!(f.last_error(), None);
    assert!(f.poll(t0 + s(100_000)).is_empty());
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn happy_path_active() {
    let t0 = Instant::now();
    let mut f = fsm();
    assert_eq!(f.handle(t0, Event::ManualStart), vec![Action::Connect]);
    assert_eq!(f.state(), State::Connect);
    assert_eq!(f.next_deadline(), Some(t0 + s(1)));
    assert_eq!(f.last_change(), Some(t0));

    let t1 = t0 + Duration::from_millis(300);
    assert_eq!(
        f.handle(t1, Event::TcpConnected),
        vec![Action::SendOpen { hold_time: 90 }]
    );
    assert_eq!(f.state(), State::OpenSent);
    assert_eq!(f.next_deadline(), Some(t1 + s(240)));
    assert_eq!(f.negotiated_hold_time(), None);

    let t2 = t1 + s(1);
    assert_eq!(
        f.handle(t2, Event::OpenReceived { hold_time: 240 }),
        vec![Action::SendKeepalive]
    );
    assert_eq!(f.state(), State::OpenConfirm);
    assert_eq!(f.negotiated_hold_time(), Some(90));
    assert_eq!(f.next_deadline(), Some(t2 + s(30)));
    assert_eq!(f.hold, Some(t2 + s(90)));

    let t3 = t2 + s(1);
    assert_eq!(
        f.handle(t3, Event::KeepaliveReceived),
        vec![Action::SessionUp {
            hold_time: 90,
            keepalive: 30
        }]
    );
    assert_eq!(f.state(), State::Established);
    assert_eq!(f.established_since(), Some(t3));
    assert_eq!(f.last_change(), Some(t3));
    assert_eq!(f.hold, Some(t3 + s(90)));
    assert_eq!(f.keepalive, Some(t2 + s(30)));
    assert_eq!(f.connect_retry, None);
}

#[test]
fn happy_path_passive() {
    let t0 = Instant::now();
    let mut f = Fsm::new(config(true, 90));
    assert!(f.handle(t0, Event::ManualStart).is_empty());
    assert_eq!(f.state(), State::Active);
    // No connect-retry cycling for a passive peer.
    assert_eq!(f.next_deadline(), None);
    assert!(f.poll(t0 + s(3600)).is_empty());
    assert_eq!(f.state(), State::Active);

    let t1 = t0 + s(3600);
    assert_eq!(
        f.handle(t1, Event::TcpConnected),
        vec![Action::SendOpen { hold_time: 90 }]
    );
    assert_eq!(f.state(), State::OpenSent);
    assert_eq!(
        f.handle(t1, Event::OpenReceived { hold_time: 90 }),
        vec![Action::SendKeepalive]
    );
    assert_eq!(
        f.handle(t1, Event::KeepaliveReceived),
        vec![Action::SessionUp {
            hold_time: 90,
            keepalive: 30
        }]
    );
    assert_eq!(f.state(), State::Established);
}

#[test]
fn hold_time_zero_runs_no_timers() {
    let t0 = Instant::now();
    for (ours, theirs) in [(0, 90), (90, 0), (0, 0)] {
        let mut f = Fsm::new(config(false, ours));
        drive(&mut f, t0, State::OpenSent, theirs);
        assert_eq!(
            f.handle(t0, Event::OpenReceived { hold_time: theirs }),
            vec![Action::SendKeepalive]
        );
        assert_eq!(f.negotiated_hold_time(), Some(0));
        assert_eq!(f.next_deadline(), None);
        assert_eq!(
            f.handle(t0, Event::KeepaliveReceived),
            vec![Action::SessionUp {
                hold_time: 0,
                keepalive: 0
            }]
        );
        assert_eq!(f.next_deadline(), None);
        f.message_sent(t0 + s(1));
        f.handle(t0 + s(2), Event::UpdateReceived);
        assert_eq!(f.next_deadline(), None);
        assert!(f.poll(t0 + s(100_000)).is_empty());
        assert_eq!(f.state(), State::Established);
    }
}

#[test]
fn hold_time_one_or_two_is_rejected() {
    let t0 = Instant::now();
    for h in [1, 2] {
        let mut f = at(State::OpenSent, t0);
        let n = Notification::new(OPEN_MESSAGE_ERROR, 6);
        assert_eq!(
            f.handle(t0, Event::OpenReceived { hold_time: h }),
            send_drop(n.clone())
        );
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.last_error(), Some(&(ErrorSide::Sent, n)));
        assert_eq!(f.negotiated_hold_time(), None);
        assert_eq!(f.auto_restart_at(), Some(t0 + s(5)));
    }
}

#[test]
fn hold_time_is_the_minimum() {
    let t0 = Instant::now();
    for (ours, theirs, want, keepalive) in [
        (90, 30, 30, 10),
        (90, 240, 90, 30),
        (240, 90, 90, 30),
        (3, 65535, 3, 1),
        (65535, 65535, 65535, 21845),
        (10, 10, 10, 3),
    ] {
        let mut f = Fsm::new(config(false, ours));
        drive(&mut f, t0, State::OpenSent, theirs);
        f.handle(t0, Event::OpenReceived { hold_time: theirs });
        assert_eq!(f.negotiated_hold_time(), Some(want));
        assert_eq!(f.hold, Some(t0 + s(want.into())));
        assert_eq!(f.keepalive, Some(t0 + s(keepalive.into())));
        assert_eq!(
            f.handle(t0, Event::KeepaliveReceived),
            vec![Action::SessionUp {
                hold_time: want,
                keepalive
            }]
        );
    }
}

#[test]
fn config_is_sanitized() {
    let t0 = Instant::now();
    for h in [1, 2] {
        let mut f = Fsm::new(config(false, h));
        f.handle(t0, Event::ManualStart);
        assert_eq!(
            f.handle(t0, Event::TcpConnected),
            vec![Action::SendOpen { hold_time: 3 }]
        );
    }
    let mut f = Fsm::new(Config {
        connect_retry: Duration::ZERO,
        idle_hold: Duration::ZERO,
        idle_hold_max: Duration::ZERO,
        ..Config::default()
    });
    f.handle(t0, Event::ManualStart);
    assert_eq!(f.next_deadline(), Some(t0 + s(1)));
    // A zero idle hold restarts within the same poll, and poll still leaves no deadline
    // in the past.
    drive(&mut f, t0, State::Established, 90);
    assert_eq!(
        f.poll(t0 + s(90)),
        vec![
            Action::SendNotification(Notification::new(HOLD_TIMER_EXPIRED, 0)),
            Action::Drop,
            Action::SessionDown {
                reason: "sent NOTIFICATION: hold timer expired (4/0)".into()
            },
            Action::Connect,
        ]
    );
    assert_eq!(f.state(), State::Connect);
    assert_eq!(f.next_deadline(), Some(t0 + s(91)));
    assert_eq!(Config::default().connect_retry, s(30));
}

/// Runs 10 minutes of Established with the peer sending a KEEPALIVE every 30 s and
/// returns the instants of our KEEPALIVEs; `sent_every` simulates UPDATEs we send.
fn keepalives_over_ten_minutes(sent_every: Option<u64>) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut f = at(State::Established, t0);
    let mut sent = Vec::new();
    for ms in (0..=600_000u64).step_by(250) {
        let now = t0 + Duration::from_millis(ms);
        if ms > 0 && ms % 30_000 == 0 {
            assert!(f.handle(now, Event::KeepaliveReceived).is_empty());
        }
        if let Some(every) = sent_every {
            if ms % (every * 1000) == 0 {
                f.message_sent(now);
            }
        }
        for a in f.poll(now) {
            assert_eq!(a, Action::SendKeepalive);
            sent.push(now - t0);
        }
        assert_eq!(f.state(), State::Established);
    }
    sent
}

#[test]
fn keepalive_cadence_without_other_messages() {
    let sent = keepalives_over_ten_minutes(None);
    let want: Vec<Duration> = (1..=20).map(|i| s(30 * i)).collect();
    assert_eq!(sent, want);
}

#[test]
fn keepalive_pushed_back_by_messages_sent() {
    assert!(keepalives_over_ten_minutes(Some(10)).is_empty());
    // Sending every 45 s leaves one KEEPALIVE 30 s after each message.
    let sent = keepalives_over_ten_minutes(Some(45));
    let want: Vec<Duration> = (0..=12).map(|i| s(45 * i + 30)).collect();
    assert_eq!(sent, want);
}

#[test]
fn keepalive_timer_in_openconfirm_and_late_poll() {
    let t0 = Instant::now();
    let mut f = at(State::OpenConfirm, t0);
    assert_eq!(f.poll(t0 + s(30)), vec![Action::SendKeepalive]);
    assert_eq!(f.state(), State::OpenConfirm);
    // A late poll fires once and restarts from now.
    assert_eq!(f.poll(t0 + s(80)), vec![Action::SendKeepalive]);
    assert_eq!(f.keepalive, Some(t0 + s(110)));
    assert_eq!(f.next_deadline(), Some(t0 + s(90)));
}

#[test]
fn hold_timer_expires_exactly_at_the_deadline() {
    let t0 = Instant::now();
    let mut f = at(State::Established, t0);
    // Keep our side quiet so only the hold timer matters.
    f.message_sent(t0 + s(89));
    let deadline = t0 + s(90);
    assert!(f.poll(deadline - Duration::from_nanos(1)).is_empty());
    assert_eq!(f.state(), State::Established);
    let n = Notification::new(HOLD_TIMER_EXPIRED, 0);
    assert_eq!(
        f.poll(deadline),
        vec![
            Action::SendNotification(n.clone()),
            Action::Drop,
            Action::SessionDown {
                reason: "sent NOTIFICATION: hold timer expired (4/0)".into()
            },
        ]
    );
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.last_error(), Some(&(ErrorSide::Sent, n)));
    assert_eq!(f.established_since(), None);
    assert_eq!(f.next_deadline(), Some(deadline + s(5)));
}

#[test]
fn hold_timer_restarted_by_received_messages() {
    let t0 = Instant::now();
    let mut f = at(State::Established, t0);
    assert!(f.handle(t0 + s(60), Event::UpdateReceived).is_empty());
    assert_eq!(f.hold, Some(t0 + s(150)));
    assert!(f.handle(t0 + s(100), Event::KeepaliveReceived).is_empty());
    assert_eq!(f.hold, Some(t0 + s(190)));
    assert_eq!(
        f.handle(t0 + s(120), Event::RouteRefreshReceived),
        vec![Action::ResendAnnouncements]
    );
    assert_eq!(f.hold, Some(t0 + s(210)));
    f.message_sent(t0 + s(200));
    assert!(f.poll(t0 + s(209)).is_empty());
    assert_eq!(f.state(), State::Established);
    assert!(f.poll(t0 + s(210)).len() == 3);
}

#[test]
fn hold_timer_in_opensent_and_openconfirm() {
    let t0 = Instant::now();
    let mut f = at(State::OpenSent, t0);
    assert!(f.poll(t0 + s(239)).is_empty());
    let n = Notification::new(HOLD_TIMER_EXPIRED, 0);
    assert_eq!(f.poll(t0 + s(240)), send_drop(n.clone()));
    assert_eq!(f.state(), State::Idle);

    let mut f = at(State::OpenConfirm, t0);
    assert_eq!(f.poll(t0 + s(60)), vec![Action::SendKeepalive]);
    // Keepalive and hold both due at 90 s: the hold timer wins.
    assert_eq!(f.poll(t0 + s(90)), send_drop(n));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn connect_retry_cycling() {
    let t0 = Instant::now();
    let mut f = fsm();
    f.handle(t0, Event::ManualStart);
    // The attempt hangs: abandon it and try again, every second.
    assert_eq!(f.poll(t0 + s(1)), vec![Action::Drop, Action::Connect]);
    assert_eq!(f.state(), State::Connect);
    assert_eq!(f.next_deadline(), Some(t0 + s(2)));
    // It fails quickly: wait in Active until the running timer expires.
    let t = t0 + Duration::from_millis(1500);
    assert_eq!(f.handle(t, Event::TcpFailed), vec![Action::Drop]);
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.next_deadline(), Some(t0 + s(2)));
    assert!(f.poll(t0 + Duration::from_millis(1999)).is_empty());
    assert_eq!(f.poll(t0 + s(2)), vec![Action::Connect]);
    assert_eq!(f.state(), State::Connect);
    assert_eq!(f.next_deadline(), Some(t0 + s(3)));
    // Stale or meaningless events in Active are ignored, the cycle goes on.
    f.handle(t0 + s(2), Event::TcpFailed);
    assert!(f.handle(t0 + s(2), Event::TcpFailed).is_empty());
    assert_eq!(f.state(), State::Active);
    // An incoming connection in Active stops the cycle.
    assert_eq!(
        f.handle(t0 + s(2), Event::TcpConnected),
        vec![Action::SendOpen { hold_time: 90 }]
    );
    assert_eq!(f.connect_retry, None);
    assert_eq!(f.next_deadline(), Some(t0 + s(242)));
}

#[test]
fn opensent_tcp_failure_goes_active() {
    let t0 = Instant::now();
    let mut f = at(State::OpenSent, t0);
    assert_eq!(f.handle(t0 + s(5), Event::TcpFailed), vec![Action::Drop]);
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.hold, None);
    assert_eq!(f.next_deadline(), Some(t0 + s(6)));
    assert_eq!(f.last_error(), None);
    assert_eq!(f.poll(t0 + s(6)), vec![Action::Connect]);

    let mut f = passive_at(State::OpenSent, t0);
    assert_eq!(f.handle(t0, Event::TcpFailed), vec![Action::Drop]);
    assert_eq!(f.state(), State::Active);
    assert_eq!(f.next_deadline(), None);
}

/// One failure per round from OpenSent, restarting at each deadline; returns the delays.
fn backoff_delays(f: &mut Fsm, mut now: Instant, rounds: usize) -> (Vec<u64>, Instant) {
    let mut delays = Vec::new();
    for _ in 0..rounds {
        drive(f, now, State::OpenSent, 90);
        let n = Notification::new(MESSAGE_HEADER_ERROR, 2);
        assert_eq!(
            f.handle(
                now,
                Event::MessageError {
                    notification: n.clone()
                }
            ),
            send_drop(n)
        );
        let restart = f.next_deadline().unwrap();
        assert_eq!(f.auto_restart_at(), Some(restart));
        delays.push((restart - now).as_secs());
        assert!(f.poll(restart - Duration::from_millis(1)).is_empty());
        let passive = f.config.passive;
        let want = if passive {
            vec![]
        } else {
            vec![Action::Connect]
        };
        assert_eq!(f.poll(restart), want);
        let want = if passive {
            State::Active
        } else {
            State::Connect
        };
        assert_eq!(f.state(), want);
        now = restart;
    }
    (delays, now)
}

#[test]
fn automatic_restart_backoff() {
    let t0 = Instant::now();
    let mut f = fsm();
    let (delays, _) = backoff_delays(&mut f, t0, 8);
    assert_eq!(delays, [5, 10, 20, 40, 80, 120, 120, 120]);

    let mut f = Fsm::new(config(true, 90));
    let (delays, _) = backoff_delays(&mut f, t0, 3);
    assert_eq!(delays, [5, 10, 20]);
    assert_eq!(f.state(), State::Active);
}

#[test]
fn backoff_resets_after_a_stable_session_only() {
    let t0 = Instant::now();
    // A session that stays up 61 s (> max(30 s hold, 60 s)) resets the backoff.
    let mut f = fsm();
    let (_, now) = backoff_delays(&mut f, t0, 3);
    drive(&mut f, now, State::Established, 30);
    for i in 1..=6 {
        f.handle(now + s(10 * i), Event::KeepaliveReceived);
    }
    let out = f.handle(now + s(61), Event::TcpFailed);
    assert_eq!(
        out,
        vec![
            Action::Drop,
            Action::SessionDown {
                reason: "connection closed".into()
            }
        ]
    );
    assert_eq!(f.next_deadline(), Some(now + s(66)));

    // Exactly 60 s is not enough, nor is one hold time when it is shorter than 60 s.
    let mut f = fsm();
    let (_, now) = backoff_delays(&mut f, t0, 3);
    drive(&mut f, now, State::Established, 30);
    for i in 1..=6 {
        f.handle(now + s(10 * i), Event::KeepaliveReceived);
    }
    f.handle(now + s(60), Event::TcpFailed);
    assert_eq!(f.next_deadline(), Some(now + s(100)));

    // With a 240 s hold time, the session must outlive one hold time.
    let mut f = Fsm::new(config(false, 240));
    let (_, now) = backoff_delays(&mut f, t0, 2);
    drive(&mut f, now, State::Established, 240);
    f.handle(now + s(200), Event::TcpFailed);
    assert_eq!(f.next_deadline(), Some(now + s(200 + 20)));
    let mut f = Fsm::new(config(false, 240));
    let (_, now) = backoff_delays(&mut f, t0, 2);
    drive(&mut f, now, State::Established, 240);
    f.handle(now + s(100), Event::KeepaliveReceived);
    f.handle(now + s(241), Event::TcpFailed);
    assert_eq!(f.next_deadline(), Some(now + s(241 + 5)));
}

#[test]
fn manual_stop_in_every_state() {
    let t0 = Instant::now();
    let n = admin_shutdown();
    for state in ALL_STATES {
        for passive in [false, true] {
            if passive && state == State::Connect {
                continue;
            }
            let mut f = Fsm::new(config(passive, 90));
            drive(&mut f, t0, state, 90);
            let out = f.handle(
                t0 + s(1),
                Event::ManualStop {
                    notification: n.clone(),
                },
            );
            let want = match state {
                State::Idle | State::Active => vec![],
                State::Connect => vec![Action::Drop],
                State::OpenSent | State::OpenConfirm => send_drop(n.clone()),
                State::Established => vec![
                    Action::SendNotification(n.clone()),
                    Action::Drop,
                    Action::SessionDown {
                        reason: "sent NOTIFICATION: cease: administrative shutdown (6/2)".into(),
                    },
                ],
            };
            assert_eq!(out, want, "{state:?}");
            assert_eq!(f.state(), State::Idle);
            assert_eq!(f.next_deadline(), None, "{state:?}");
            assert!(f.poll(t0 + s(100_000)).is_empty());
            let want_error = state.connected().then(|| (ErrorSide::Sent, n.clone()));
            assert_eq!(f.last_error(), want_error.as_ref());
        }
    }
}

#[test]
fn manual_stop_cancels_restart_and_resets_backoff() {
    let t0 = Instant::now();
    let mut f = fsm();
    let (_, now) = backoff_delays(&mut f, t0, 3);
    f.handle(
        now,
        Event::LocalError {
            notification: Notification::new(CEASE, 8),
            auto_restart: true,
        },
    );
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.next_deadline(), Some(now + s(40)));
    assert!(f
        .handle(
            now,
            Event::ManualStop {
                notification: admin_shutdown()
            }
        )
        .is_empty());
    assert_eq!(f.next_deadline(), None);
    let (delays, _) = backoff_delays(&mut f, now, 2);
    assert_eq!(delays, [5, 10]);
}

#[test]
fn manual_start_cuts_the_idle_hold_short_and_is_ignored_elsewhere() {
    let t0 = Instant::now();
    let mut f = fsm();
    backoff_delays(&mut f, t0, 1);
    drive(&mut f, t0, State::Established, 90);
    let n = Notification::new(UPDATE_MESSAGE_ERROR, 1);
    f.handle(t0, Event::MessageError { notification: n });
    assert!(f.auto_restart_at().is_some());
    assert_eq!(f.handle(t0, Event::ManualStart), vec![Action::Connect]);
    assert_eq!(f.auto_restart_at(), None);
    assert_eq!(f.next_deadline(), Some(t0 + s(1)));

    for state in &ALL_STATES[1..] {
        let mut f = at(*state, t0);
        let deadline = f.next_deadline();
        assert!(f.handle(t0 + s(1), Event::ManualStart).is_empty());
        assert_eq!(f.state(), *state);
        assert_eq!(f.next_deadline(), deadline);
    }
}

#[test]
fn local_error_without_auto_restart_stays_idle() {
    let t0 = Instant::now();
    let n = Notification::new(CEASE, 1);
    let mut f = at(State::Established, t0);
    let out = f.handle(
        t0 + s(10),
        Event::LocalError {
            notification: n.clone(),
            auto_restart: false,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::SendNotification(n.clone()),
            Action::Drop,
            Action::SessionDown {
                reason: "sent NOTIFICATION: cease: maximum number of prefixes reached (6/1)".into()
            },
        ]
    );
    assert_eq!(f.state(), State::Idle);
    assert_eq!(f.next_deadline(), None);
    assert_eq!(f.last_error(), Some(&(ErrorSide::Sent, n)));
    assert!(f.poll(t0 + s(100_000)).is_empty());
    assert_eq!(f.state(), State::Idle);
    assert_eq!(
        f.handle(t0 + s(100_000), Event::ManualStart),
        vec![Action::Connect]
    );

    // Before a connection exists nothing is sent, only the attempt dropped.
    let mut f = at(State::Connect, t0);
    let out = f.handle(
        t0,
        Event::LocalError {
            notification: Notification::new(CEASE, 6),
            auto_restart: false,
        },
    );
    assert_eq!(out, vec![Action::Drop]);
    assert_eq!(
        (f.state(), f.next_deadline(), f.last_error()),
        (State::Idle, None, None)
    );

    // With auto_restart it behaves like any other error.
    let mut f = at(State::OpenConfirm, t0);
    f.handle(
        t0,
        Event::LocalError {
            notification: Notification::new(CEASE, 8),
            auto_restart: true,
        },
    );
    assert_eq!(f.next_deadline(), Some(t0 + s(5)));
}

#[test]
fn error_paths() {
    let t0 = Instant::now();
    let hdr = Notification::new(MESSAGE_HEADER_ERROR, 1);
    let bad_as = Notification::new(OPEN_MESSAGE_ERROR, 2);
    let received = Notification::with_data(3, 1, vec![1, 2]);
    let fsm_err = |sub| Notification::new(FSM_ERROR, sub);

    // (state, event, NOTIFICATION sent, last_error)
    type Case = (
        State,
        Event,
        Option<Notification>,
        Option<(ErrorSide, Notification)>,
    );
    let cases: Vec<Case> = vec![
        (
            State::OpenSent,
            Event::MessageError {
                notification: hdr.clone(),
            },
            Some(hdr.clone()),
            Some((ErrorSide::Sent, hdr.clone())),
        ),
        (
            State::OpenConfirm,
            Event::MessageError {
                notification: hdr.clone(),
            },
            Some(hdr.clone()),
            Some((ErrorSide::Sent, hdr.clone())),
        ),
        (
            State::Established,
            Event::MessageError {
                notification: hdr.clone(),
            },
            Some(hdr.clone()),
            Some((ErrorSide::Sent, hdr.clone())),
        ),
        (
            State::OpenSent,
            Event::OpenRejected {
                notification: bad_as.clone(),
            },
            Some(bad_as.clone()),
            Some((ErrorSide::Sent, bad_as.clone())),
        ),
        (
            State::OpenConfirm,
            Event::OpenRejected {
                notification: bad_as.clone(),
            },
            Some(fsm_err(2)),
            Some((ErrorSide::Sent, fsm_err(2))),
        ),
        (
            State::Established,
            Event::OpenRejected {
                notification: bad_as.clone(),
            },
            Some(fsm_err(3)),
            Some((ErrorSide::Sent, fsm_err(3))),
        ),
        (
            State::OpenSent,
            Event::NotificationReceived {
                notification: received.clone(),
            },
            None,
            Some((ErrorSide::Received, received.clone())),
        ),
        (
            State::OpenConfirm,
            Event::NotificationReceived {
                notification: received.clone(),
            },
            None,
            Some((ErrorSide::Received, received.clone())),
        ),
        (
            State::Established,
            Event::NotificationReceived {
                notification: received.clone(),
            },
            None,
            Some((ErrorSide::Received, received.clone())),
        ),
        (State::OpenConfirm, Event::TcpFailed, None, None),
        (State::Established, Event::TcpFailed, None, None),
    ];
    for (state, event, sent, error) in cases {
        let mut f = at(state, t0);
        let now = t0 + s(3);
        let out = f.handle(now, event.clone());
        let mut want: Vec<Action> = sent.into_iter().map(Action::SendNotification).collect();
        want.push(Action::Drop);
        assert_eq!(&out[..want.len()], &want[..], "{state:?} {event:?}");
        let downs = out.iter().filter(|a| is_down(a)).count();
        assert_eq!(
            downs,
            usize::from(state == State::Established),
            "{state:?} {event:?}"
        );
        assert_eq!(out.len(), want.len() + downs);
        assert_eq!(f.state(), State::Idle);
        assert_eq!(f.last_error(), error.as_ref(), "{state:?} {event:?}");
        assert_eq!(f.next_deadline(), Some(now + s(5)));
        assert_eq!(f.negotiated_hold_time(), None);
    }
}

#[test]
fn administrative_shutdown_received_restarts_and_reports_the_message() {
    let t0 = Instant::now();
    let mut data = vec![11];
    data.extend_from_slice(b"maintenance");
    let n = Notification::with_data(CEASE, 2, data);
    let mut f = at(State::Established, t0);
    let out = f.handle(
        t0 + s(1),
        Event::NotificationReceived {
            notification: n.clone(),
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Drop,
            Action::SessionDown {
                reason: "received NOTIFICATION: cease: administrative shutdown (6/2): maintenance"
                    .into()
            },
        ]
    );
    assert_eq!(f.last_error(), Some(&(ErrorSide::Received, n)));
    assert_eq!(f.next_deadline(), Some(t0 + s(6)));
    // Malformed shutdown communications are left out, never a panic.
    for data in [vec![], vec![200, b'x'], vec![2, 0xff, 0xfe], vec![1, b'\n']] {
        let n = Notification::with_data(CEASE, 4, data);
        assert_eq!(describe(&n), "cease: administrative reset (6/4)");
    }
    assert_eq!(describe(&Notification::new(99, 7)), "unknown error (99/7)");
}

#[test]
fn wrong_state_messages() {
    let t0 = Instant::now();
    let n = Notification::new(UPDATE_MESSAGE_ERROR, 3);
    let messages = [
        Event::OpenReceived { hold_time: 90 },
        Event::OpenRejected {
            notification: n.clone(),
        },
        Event::MessageError {
            notification: n.clone(),
        },
        Event::NotificationReceived {
            notification: n.clone(),
        },
        Event::KeepaliveReceived,
        Event::UpdateReceived,
        Event::RouteRefreshReceived,
        Event::TcpFailed,
        Event::TcpConnected,
        Event::CollisionDump,
    ];
    for state in ALL_STATES {
        for event in messages.iter().cloned() {
            let mut f = at(state, t0);
            let deadline = f.next_deadline();
            let out = f.handle(t0 + s(1), event.clone());
            let fsm_error = |sub| send_drop(Notification::new(FSM_ERROR, sub));
            use Event as E;
            use State as S;
            let wrong = match (state, &event) {
                (
                    S::OpenSent,
                    E::KeepaliveReceived | E::UpdateReceived | E::RouteRefreshReceived,
                ) => Some(1),
                (
                    S::OpenConfirm,
                    E::OpenReceived { .. }
                    | E::OpenRejected { .. }
                    | E::UpdateReceived
                    | E::RouteRefreshReceived,
                ) => Some(2),
                (S::Established, E::OpenReceived { .. } | E::OpenRejected { .. }) => Some(3),
                _ => None,
            };
            if let Some(sub) = wrong {
                assert_eq!(&out[..2], &fsm_error(sub)[..], "{state:?} {event:?}");
                assert_eq!(f.state(), State::Idle);
                assert_eq!(f.next_deadline(), Some(t0 + s(6)));
                continue;
            }
            // Without a BGP connection, message events are stale and change nothing
            // (TcpFailed in Connect is a real failure; TcpConnected in Idle is refused).
            match state {
                S::Idle => {
                    let want = if event == E::TcpConnected {
                        vec![Action::Drop]
                    } else {
                        vec![]
                    };
                    assert_eq!(out, want, "{event:?}");
                }
                S::Connect if event == E::TcpFailed => assert_eq!(f.state(), S::Active),
                S::Connect | S::Active if event == E::TcpConnected => {
                    assert_eq!(f.state(), S::OpenSent)
                }
                S::Connect | S::Active => {
                    assert!(out.is_empty(), "{state:?} {event:?}");
                    assert_eq!((f.state(), f.next_deadline()), (state, deadline));
                }
                // A second connection is the caller's business.
                _ if event == E::TcpConnected => {
                    assert!(out.is_empty());
                    assert_eq!(f.state(), state);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn collision_rule() {
    let a = Ipv4Addr::new(192, 0, 2, 1);
    let b = Ipv4Addr::new(10, 255, 255, 255);
    // Compared as u32, not as strings or bytes in a different order.
    assert!(keep_locally_initiated(a, b));
    assert!(!keep_locally_initiated(b, a));
    assert!(keep_locally_initiated(
        Ipv4Addr::new(0, 0, 1, 0),
        Ipv4Addr::new(0, 0, 0, 255)
    ));
    assert!(!keep_locally_initiated(a, a));
}

#[test]
fn collision_dump() {
    let t0 = Instant::now();
    let cease = Notification::new(CEASE, 7);
    for state in [State::OpenSent, State::OpenConfirm] {
        let mut f = at(state, t0);
        assert_eq!(
            f.handle(t0 + s(2), Event::CollisionDump),
            send_drop(cease.clone())
        );
        assert_eq!(f.state(), State::Active);
        assert_eq!(f.negotiated_hold_time(), None);
        assert_eq!(f.last_error(), Some(&(ErrorSide::Sent, cease.clone())));
        assert_eq!(f.next_deadline(), Some(t0 + s(3)));
        // The winning connection takes over at once.
        assert_eq!(
            f.handle(t0 + s(2), Event::TcpConnected),
            vec![Action::SendOpen { hold_time: 90 }]
        );
        f.handle(t0 + s(2), Event::OpenReceived { hold_time: 90 });
        f.handle(t0 + s(2), Event::KeepaliveReceived);
        assert_eq!(f.state(), State::Established);
        // No backoff was counted.
        f.handle(t0 + s(3), Event::TcpFailed);
        assert_eq!(f.next_deadline(), Some(t0 + s(8)));
    }
    let mut f = passive_at(State::OpenConfirm, t0);
    f.handle(t0, Event::CollisionDump);
    assert_eq!((f.state(), f.next_deadline()), (State::Active, None));
}

#[test]
fn last_change_follows_state_changes_only() {
    let t0 = Instant::now();
    let mut f = fsm();
    f.handle(t0, Event::ManualStart);
    f.poll(t0 + s(1));
    assert_eq!(f.last_change(), Some(t0), "Connect → Connect is no change");
    f.handle(t0 + s(2), Event::TcpConnected);
    assert_eq!(f.last_change(), Some(t0 + s(2)));
    f.handle(
        t0 + s(3),
        Event::ManualStop {
            notification: admin_shutdown(),
        },
    );
    assert_eq!(f.last_change(), Some(t0 + s(3)));
    f.handle(
        t0 + s(4),
        Event::ManualStop {
            notification: admin_shutdown(),
        },
    );
    assert_eq!(f.last_change(), Some(t0 + s(3)));
}

// ---- randomized ----

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_notification(r: &mut XorShift) -> Notification {
    let len = r.below(4) as usize;
    let data = (0..len).map(|_| r.next() as u8).collect();
    Notification::with_data(1 + r.below(7) as u8, r.below(10) as u8, data)
}

fn random_event(r: &mut XorShift) -> Event {
    const HOLDS: [u16; 8] = [0, 1, 2, 3, 5, 90, 240, 65535];
    match r.below(14) {
        0 => Event::ManualStart,
        1 => Event::ManualStop {
            notification: random_notification(r),
        },
        2 | 3 => Event::TcpConnected,
        4 => Event::TcpFailed,
        5 | 6 => Event::OpenReceived {
            hold_time: if r.below(2) == 0 {
                HOLDS[r.below(8) as usize]
            } else {
                r.next() as u16
            },
        },
        7 => Event::OpenRejected {
            notification: random_notification(r),
        },
        8 => Event::MessageError {
            notification: random_notification(r),
        },
        9 => Event::NotificationReceived {
            notification: random_notification(r),
        },
        10 => Event::KeepaliveReceived,
        11 => Event::UpdateReceived,
        12 => match r.below(3) {
            0 => Event::RouteRefreshReceived,
            1 => Event::CollisionDump,
            _ => Event::LocalError {
                notification: random_notification(r),
                auto_restart: r.below(2) == 0,
            },
        },
        _ => Event::KeepaliveReceived,
    }
}

/// The event that moves `state` forward (or keeps an Established session alive), so that
/// random runs spend time in every state rather than mostly in Idle.
fn forward_event(r: &mut XorShift, state: State) -> Event {
    match state {
        State::Idle => Event::ManualStart,
        State::Connect | State::Active => Event::TcpConnected,
        State::OpenSent => Event::OpenReceived {
            hold_time: [0, 3, 90, 240][r.below(4) as usize],
        },
        State::OpenConfirm => Event::KeepaliveReceived,
        State::Established => match r.below(3) {
            0 => Event::KeepaliveReceived,
            1 => Event::UpdateReceived,
            _ => Event::RouteRefreshReceived,
        },
    }
}

/// Checks the invariants that hold after any call.
fn check_state(f: &Fsm, up: bool, ctx: &str) {
    use State::*;
    let st = f.state;
    assert_eq!(up, st == Established, "{ctx}");
    assert_eq!(f.established_since.is_some(), st == Established, "{ctx}");
    assert_eq!(
        f.negotiated.is_some(),
        matches!(st, OpenConfirm | Established),
        "{ctx}"
    );
    assert!(
        f.connect_retry.is_none() || matches!(st, Connect | Active),
        "{ctx}"
    );
    assert!(f.connect_retry.is_none() || !f.config.passive, "{ctx}");
    assert_eq!(
        f.connect_retry.is_some(),
        st == Connect || (st == Active && !f.config.passive),
        "{ctx}"
    );
    assert!(f.hold.is_none() || st.connected(), "{ctx}");
    assert!(
        f.keepalive.is_none() || matches!(st, OpenConfirm | Established),
        "{ctx}"
    );
    assert!(f.restart.is_none() || st == Idle, "{ctx}");
    let timed = f.negotiated.is_some_and(|h| h > 0);
    if matches!(st, OpenConfirm | Established) {
        assert_eq!(f.hold.is_some(), timed, "{ctx}");
        assert_eq!(f.keepalive.is_some(), timed, "{ctx}");
    }
    if st == OpenSent {
        assert!(f.hold.is_some(), "{ctx}");
    }
    assert!(f.negotiated.is_none_or(|h| h == 0 || h >= 3), "{ctx}");
}

/// Checks a batch of actions against the state before and after.
fn check_actions(before: State, f: &Fsm, out: &[Action], up: &mut bool, ctx: &str) {
    for (i, a) in out.iter().enumerate() {
        match a {
            Action::SessionUp {
                hold_time,
                keepalive,
            } => {
                assert!(!*up, "SessionUp twice: {ctx}");
                *up = true;
                assert_eq!(before, State::OpenConfirm, "{ctx}");
                assert_eq!(Some(*hold_time), f.negotiated, "{ctx}");
                assert_eq!(*keepalive, keepalive_secs(*hold_time), "{ctx}");
            }
            Action::SessionDown { .. } => {
                assert!(*up, "SessionDown without SessionUp: {ctx}");
                *up = false;
                assert_eq!(before, State::Established, "{ctx}");
            }
            Action::SendNotification(_) => {
                assert_eq!(out.get(i + 1), Some(&Action::Drop), "{ctx}");
                assert!(before.connected(), "{ctx}");
            }
            Action::SendOpen { .. } => assert_eq!(f.state(), State::OpenSent, "{ctx}"),
            Action::Connect => assert!(matches!(f.state(), State::Connect | State::Idle), "{ctx}"),
            Action::SendKeepalive => {
                assert!(
                    matches!(
                        before,
                        State::OpenSent | State::OpenConfirm | State::Established
                    ),
                    "{ctx}"
                )
            }
            Action::ResendAnnouncements => assert_eq!(f.state(), State::Established, "{ctx}"),
            Action::Drop => {}
        }
    }
}

fn random_run(seed: u64, config: Config, steps: usize) {
    let mut r = XorShift(seed);
    let t0 = Instant::now();
    let mut now = t0;
    let mut f = Fsm::new(config);
    let mut up = false;
    for step in 0..steps {
        // Advance the fake clock: often a little, sometimes to (or just before) the next
        // deadline, sometimes a lot.
        match r.below(10) {
            0..=4 => now += Duration::from_millis(r.below(3000)),
            5 | 6 => {
                if let Some(d) = f.next_deadline() {
                    now = now.max(d);
                }
            }
            7 => {
                if let Some(d) = f.next_deadline() {
                    now = now.max(d - Duration::from_nanos(1));
                }
            }
            8 => now += Duration::from_secs(r.below(600)),
            _ => {}
        }
        let before = f.state();
        let ctx = format!("seed {seed} step {step} {before:?}");
        match r.below(4) {
            0 => {
                let deadline = f.next_deadline();
                let out = f.poll(now);
                if deadline.is_none_or(|d| d > now) {
                    assert!(out.is_empty(), "poll before the deadline acted: {ctx}");
                }
                if let Some(d) = f.next_deadline() {
                    assert!(d > now, "deadline in the past after poll: {ctx}");
                }
                check_actions(before, &f, &out, &mut up, &ctx);
            }
            1 if r.below(4) == 0 => {
                f.message_sent(now);
                assert_eq!(f.state(), before);
            }
            _ => {
                let event = if r.below(2) == 0 {
                    forward_event(&mut r, before)
                } else {
                    random_event(&mut r)
                };
                let ctx = format!("{ctx} {event:?}");
                let out = f.handle(now, event);
                check_actions(before, &f, &out, &mut up, &ctx);
            }
        }
        check_state(&f, up, &format!("{ctx} → {:?}", f.state()));
    }
}

#[test]
fn randomized_invariants() {
    let configs = [
        config(false, 90),
        config(true, 90),
        config(false, 0),
        config(true, 3),
        Config {
            idle_hold: Duration::ZERO,
            connect_retry: Duration::ZERO,
            ..config(false, 65535)
        },
    ];
    for (i, c) in configs.into_iter().enumerate() {
        random_run(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1), c, 100_000);
    }
}

#[test]
fn each_error_is_reported_once_even_when_a_peer_repeats_it() {
    let t0 = Instant::now();
    let mut f = fsm();
    let n = admin_shutdown();
    for round in 0..2 {
        drive(&mut f, t0, State::Established, 90);
        assert_eq!(f.take_new_error(), None, "round {round}: nothing new yet");
        let out = f.handle(
            t0,
            Event::NotificationReceived {
                notification: n.clone(),
            },
        );
        assert!(out.iter().any(is_down), "{out:?}");
        // The error is there when the caller publishes the state change it caused.
        assert_eq!(f.take_new_error(), Some(&(ErrorSide::Received, n.clone())));
        assert_eq!(f.take_new_error(), None, "reported once");
        f.handle(
            t0,
            Event::ManualStop {
                notification: n.clone(),
            },
        );
        f.take_new_error();
    }
}
