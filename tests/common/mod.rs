//! A mocked protocol for integration tests under the manual clock: it
//! records every start, cancel and close and completes attempts only when
//! a test tells it to.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

/// What the mock saw, and the attempts it holds.
#[derive(Default)]
pub struct Mock {
    pub log: Mutex<Vec<String>>,
    pub attempts: Mutex<Vec<(ProtocolAttempt, SocketAddr)>>,
}

impl Mock {
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    pub fn starts(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }
    pub fn attempt(&self, i: usize) -> ProtocolAttempt {
        self.attempts.lock().unwrap()[i].0.clone()
    }
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.attempts.lock().unwrap()[i].1
    }
}

struct P(Arc<Mock>);

impl Protocol for P {
    fn start(&self, attempt: ProtocolAttempt, remote: SocketAddr, _: &PathInfo) -> std::result::Result<(), i32> {
        self.0.log.lock().unwrap().push(format!("start {remote}"));
        self.0.attempts.lock().unwrap().push((attempt, remote));
        Ok(())
    }
    fn cancel(&self, a: &ProtocolAttempt) {
        self.0.log.lock().unwrap().push(format!("cancel #{}", a.index()));
    }
    fn close(&self, c: ProtocolConnection) {
        self.0.log.lock().unwrap().push(format!("close {}", c.data));
    }
}

/// A manual-clock loop with the mock registered as "mock" (reliable,
/// multistreaming) and a Preconnection to `hosts` on port 9001 whose
/// properties require multistreaming (so only the mock races).
pub fn mock_setup(hosts: &[&str]) -> (EventLoop, Arc<Mock>, Preconnection) {
    let lp = EventLoop::with_manual_clock().unwrap();
    let mock = Arc::new(Mock::default());
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("mock", traits, Arc::new(P(Arc::clone(&mock)))).unwrap();
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let eps: Vec<RemoteEndpoint> = hosts
        .iter()
        .map(|h| {
            let mut ep = RemoteEndpoint::new();
            ep.with_hostname(h).unwrap().with_port(9001).unwrap();
            ep
        })
        .collect();
    let pre = Preconnection::new(&lp, &eps, Some(&props), None).unwrap();
    (lp, mock, pre)
}
