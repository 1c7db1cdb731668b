//! Slow channel operations run beside the connection instead of inside it.
//!
//! A channel method that must wait for the broker (a declare waiting for the metadata
//! leader, a queue starting, a consume on a remote queue) is *parked*: its future runs in
//! the connection's set of parked operations while the connection keeps reading, writing,
//! delivering to other channels, confirming and sending heartbeats. Like a RabbitMQ
//! channel process, the parked channel itself stays serial: the frames that arrive for it
//! and the events queues send it are held, in order, and replayed once the operation's
//! continuation has run. Most operations finish on their first poll (local state) and run
//! inline, exactly as before, without parking.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use super::connection::Connection;
use super::error::AmqpResult;

/// How many held frames stop the connection from reading its socket (backpressure for
/// a client that pipelines behind a parked channel).
pub(super) const MAX_HELD_FRAMES: usize = 4096;

/// What runs on the connection once a parked operation finished.
pub(super) type Continuation = Box<dyn FnOnce(&mut Connection) -> AmqpResult<()> + Send>;

/// A finished parked operation, ready to be resumed on its channel.
pub(super) struct Resumed {
    pub ch: u16,
    /// The method the operation belongs to, for the error it may end with.
    pub method: (u16, u16),
    pub then: Continuation,
}

/// The operations in flight, at most one per channel.
pub(super) type ParkedOps = futures::stream::FuturesUnordered<BoxFuture<'static, Resumed>>;

/// What a parked channel accumulated while it waited.
#[derive(Debug)]
pub(super) struct Backlog<F, E> {
    pub frames: VecDeque<F>,
    pub events: Vec<E>,
}

impl<F, E> Default for Backlog<F, E> {
    fn default() -> Self {
        Backlog {
            frames: VecDeque::new(),
            events: Vec::new(),
        }
    }
}

/// The parked channels of one connection and what each holds, in arrival order.
#[derive(Debug)]
pub(super) struct Waiting<F, E> {
    channels: HashMap<u16, Backlog<F, E>>,
    held_frames: usize,
}

impl<F, E> Default for Waiting<F, E> {
    fn default() -> Self {
        Waiting {
            channels: HashMap::new(),
            held_frames: 0,
        }
    }
}

impl<F, E> Waiting<F, E> {
    /// No channel is parked (the common case, checked before any lookup).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    #[cfg(test)]
    pub fn is_parked(&self, ch: u16) -> bool {
        self.channels.contains_key(&ch)
    }

    /// Frames held across all parked channels.
    pub fn held_frames(&self) -> usize {
        self.held_frames
    }

    /// Park `ch`: from now on its frames and events are held.
    pub fn park(&mut self, ch: u16) {
        let previous = self.channels.insert(ch, Backlog::default());
        debug_assert!(previous.is_none(), "channel {ch} parked twice");
    }

    /// Hold `frame` if its channel is parked; otherwise give it back.
    pub fn hold_frame(&mut self, ch: u16, frame: F) -> Result<(), F> {
        match self.channels.get_mut(&ch) {
            Some(backlog) => {
                backlog.frames.push_back(frame);
                self.held_frames += 1;
                Ok(())
            }
            None => Err(frame),
        }
    }

    /// Hold `event` if its channel is parked; otherwise give it back.
    pub fn hold_event(&mut self, ch: u16, event: E) -> Result<(), E> {
        match self.channels.get_mut(&ch) {
            Some(backlog) => {
                backlog.events.push(event);
                Ok(())
            }
            None => Err(event),
        }
    }

    /// Unpark `ch`, handing back what it held (empty if it was not parked).
    pub fn unpark(&mut self, ch: u16) -> Backlog<F, E> {
        let backlog = self.channels.remove(&ch).unwrap_or_default();
        self.held_frames -= backlog.frames.len();
        backlog
    }

    /// Forget every parked channel (the connection is going away), handing back the
    /// events they held.
    pub fn into_events(self) -> impl Iterator<Item = E> {
        self.channels.into_values().flat_map(|b| b.events)
    }
}

impl Connection {
    /// Run `fut` for channel `ch`, then `then` with its output on the connection. If the
    /// future is ready at once, `then` runs now; otherwise the channel is parked until it is.
    pub(super) fn park<T, Fut, K>(&mut self, ch: u16, fut: Fut, then: K) -> AmqpResult<()>
    where
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
        K: FnOnce(&mut Connection, T) -> AmqpResult<()> + Send + 'static,
    {
        let mut fut = Box::pin(fut);
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        if let Poll::Ready(out) = Pin::as_mut(&mut fut).poll(&mut cx) {
            return then(self, out);
        }
        let method = self.dispatching;
        self.waiting.park(ch);
        self.parked.push(Box::pin(async move {
            let out = fut.await;
            Resumed {
                ch,
                method,
                then: Box::new(move |conn: &mut Connection| then(conn, out)),
            }
        }));
        Ok(())
    }

    /// A parked operation finished: run its continuation, then what its channel held.
    pub(super) fn resume(&mut self, resumed: Resumed) {
        let backlog = self.waiting.unpark(resumed.ch);
        if self.is_closing() {
            return;
        }
        self.dispatching = resumed.method;
        let result = (resumed.then)(self);
        self.report(resumed.ch, resumed.method, result);
        for event in backlog.events {
            self.handle_event(event);
        }
        for frame in backlog.frames {
            if self.is_closing() {
                break;
            }
            if let Err(e) = self.handle_frame(frame) {
                self.fail(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparked_channels_hold_nothing() {
        let mut w: Waiting<u32, &str> = Waiting::default();
        assert!(w.is_empty());
        assert_eq!(w.hold_frame(1, 7), Err(7));
        assert_eq!(w.hold_event(1, "e"), Err("e"));
        assert_eq!(w.held_frames(), 0);
    }

    #[test]
    fn a_parked_channel_holds_its_frames_and_events_in_order() {
        let mut w: Waiting<u32, &str> = Waiting::default();
        w.park(3);
        assert!(w.is_parked(3) && !w.is_parked(4));
        for f in [1, 2, 3] {
            assert_eq!(w.hold_frame(3, f), Ok(()));
        }
        assert_eq!(w.hold_frame(4, 9), Err(9), "another channel flows");
        assert_eq!(w.hold_event(3, "a"), Ok(()));
        assert_eq!(w.hold_event(3, "b"), Ok(()));
        assert_eq!(w.held_frames(), 3);
        let backlog = w.unpark(3);
        assert_eq!(backlog.frames, VecDeque::from([1, 2, 3]));
        assert_eq!(backlog.events, vec!["a", "b"]);
        assert_eq!(w.held_frames(), 0);
        assert!(w.is_empty());
        assert_eq!(w.hold_frame(3, 4), Err(4), "unparked again");
    }

    #[test]
    fn parking_again_during_replay_keeps_the_rest_in_order() {
        let mut w: Waiting<u32, &str> = Waiting::default();
        w.park(1);
        w.park(2);
        for f in [10, 11, 12] {
            w.hold_frame(1, f).unwrap();
        }
        w.hold_frame(2, 20).unwrap();
        let mut backlog = w.unpark(1);
        assert_eq!(w.held_frames(), 1);
        // Replaying frame 10 parks channel 1 again: 11 and 12 go back, in order.
        assert_eq!(backlog.frames.pop_front(), Some(10));
        w.park(1);
        for f in backlog.frames {
            w.hold_frame(1, f).unwrap();
        }
        w.hold_frame(1, 13).unwrap();
        assert_eq!(w.unpark(1).frames, VecDeque::from([11, 12, 13]));
        assert_eq!(w.unpark(2).frames, VecDeque::from([20]));
        assert_eq!(w.held_frames(), 0);
        w.park(5);
        w.hold_frame(5, 1).unwrap();
        w.hold_event(5, "x").unwrap();
        assert_eq!(w.into_events().collect::<Vec<_>>(), vec!["x"]);
    }
}
