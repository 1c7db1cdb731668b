//! Ordered writes to one group: requests are submitted in order, up to `depth` in the
//! log at once, and their results come back in submission order. Queue actors propose
//! their batches through one (`broker::queue_actor`, which sets the depth).
//!
//! With `depth` > 1 a later request is submitted while earlier ones are in flight, but
//! only on the condition that the leader that appended the earlier ones still leads
//! (openraft's `with_leader`), so every request in flight sits in one leader's log, in
//! order: a later one cannot commit unless the earlier ones do. That is what
//! deduplication by `(enqueuer, seq)` relies on: a retried request must never land after
//! a later one of the same enqueuer.
//!
//! When a request fails with an outcome that permits a retry (no leader, leader changed,
//! entry discarded), every request in flight is awaited, then the failed ones are sent
//! again one at a time, in order, until one commits and names the leader; pipelining
//! resumes from there. Only the first request after a start or a failure goes without the
//! leader condition. Dropping the pipeline ends its retries.

use std::collections::VecDeque;
use std::time::Duration;

use openraft::error::RaftError as OpenraftError;
use openraft::impls::ProgressResponder;
use openraft::raft::ClientWriteResult;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::error::WriteError;
use super::handle::{classify, GroupHandle};
use super::types::{Request, Response, TypeConfig};

type LeaderId = openraft::alias::CommittedLeaderIdOf<TypeConfig>;

/// The result of one request, in submission order.
pub type PipelineResult = Result<Response, WriteError>;

/// First and longest pause before a request is sent again.
const RETRY_BACKOFF: Duration = Duration::from_millis(5);
const MAX_RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// Submits requests in order; dropping it stops the pipeline (results of requests in
/// flight are not reported; their outcome is unknown).
pub struct WritePipeline {
    requests: mpsc::UnboundedSender<Request>,
    task: JoinHandle<()>,
}

impl WritePipeline {
    /// Start a pipeline with at most `depth` requests in flight; results go to `results`.
    pub(crate) fn start(
        group: GroupHandle,
        depth: usize,
        results: mpsc::UnboundedSender<PipelineResult>,
    ) -> WritePipeline {
        let (requests, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(group, depth.max(1), rx, results));
        WritePipeline { requests, task }
    }

    /// Submit `request` after every request submitted before it.
    pub fn submit(&self, request: Request) {
        let _ = self.requests.send(request);
    }
}

impl Drop for WritePipeline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Reply = oneshot::Receiver<ClientWriteResult<TypeConfig>>;

enum State {
    Queued,
    Sent(Reply),
    Done(PipelineResult),
}

struct Slot {
    request: Request,
    state: State,
}

struct Pipeline {
    group: GroupHandle,
    depth: usize,
    slots: VecDeque<Slot>,
    /// The leader that appended the last request that committed; `None` until one has,
    /// and again after a failure.
    leader: Option<LeaderId>,
    results: mpsc::UnboundedSender<PipelineResult>,
}

async fn run(
    group: GroupHandle,
    depth: usize,
    mut requests: mpsc::UnboundedReceiver<Request>,
    results: mpsc::UnboundedSender<PipelineResult>,
) {
    let mut p = Pipeline {
        group,
        depth,
        slots: VecDeque::new(),
        leader: None,
        results,
    };
    let mut open = true;
    let mut backoff = RETRY_BACKOFF;
    loop {
        p.submit_queued().await;
        // A request the group refused outright (it stopped) is done without a reply to
        // wait for: report it now, or the front would wait forever.
        p.report_done();
        if !open && p.slots.is_empty() {
            return;
        }
        let front = p.front_reply();
        tokio::select! {
            request = requests.recv(), if open => match request {
                Some(request) => p.slots.push_back(Slot { request, state: State::Queued }),
                None => open = false,
            },
            reply = front => {
                let result = match reply {
                    Ok(Ok(resp)) => {
                        p.leader = Some(*resp.log_id.committed_leader_id());
                        Ok(resp.data)
                    }
                    Ok(Err(e)) => Err(classify(OpenraftError::APIError(e))),
                    Err(_) => Err(WriteError::Unknown("the group dropped the write".into())),
                };
                match result {
                    Err(e @ (WriteError::NotLeader { .. } | WriteError::Unknown(_))) => {
                        if p.results.is_closed() {
                            return;
                        }
                        p.settle_in_flight().await;
                        if matches!(e, WriteError::NotLeader { leader: None }) {
                            p.group.renew_lease().await;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                        if let Some(front) = p.slots.front_mut() {
                            front.state = State::Queued;
                        }
                    }
                    result => {
                        backoff = RETRY_BACKOFF;
                        if let Some(front) = p.slots.front_mut() {
                            front.state = State::Done(result);
                        }
                    }
                }
                p.report_done();
            }
        }
    }
}

impl Pipeline {
    /// Send queued requests while fewer than `depth` are in flight: the first one in any
    /// case, later ones only while the leader of the last commit is known.
    async fn submit_queued(&mut self) {
        let mut in_flight = self
            .slots
            .iter()
            .filter(|s| matches!(s.state, State::Sent(_)))
            .count();
        for i in 0..self.slots.len() {
            if in_flight >= self.depth {
                return;
            }
            if !matches!(self.slots[i].state, State::Queued) {
                continue;
            }
            if i > 0 && self.leader.is_none() {
                return;
            }
            let (responder, reply) = ProgressResponder::complete_only();
            let request = self.slots[i].request.clone();
            let mut write = self.group.raft().write(request).responder(responder);
            if let Some(leader) = &self.leader {
                write = write.with_leader(*leader);
            }
            self.slots[i].state = match write.await {
                Ok(()) => State::Sent(reply),
                Err(fatal) => State::Done(Err(classify(OpenraftError::Fatal(fatal)))),
            };
            in_flight += 1;
        }
    }

    /// The reply to the oldest request, once it is in flight (pending otherwise).
    fn front_reply(
        &mut self,
    ) -> impl std::future::Future<
        Output = Result<ClientWriteResult<TypeConfig>, oneshot::error::RecvError>,
    > + '_ {
        let front = self.slots.front_mut().map(|s| &mut s.state);
        async move {
            match front {
                Some(State::Sent(reply)) => reply.await,
                _ => std::future::pending().await,
            }
        }
    }

    /// After a failure: wait for every later request in flight; keep those that
    /// committed, queue the rest again (they follow the failed one, in order).
    async fn settle_in_flight(&mut self) {
        self.leader = None;
        for slot in self.slots.iter_mut().skip(1) {
            if let State::Sent(reply) = &mut slot.state {
                slot.state = match reply.await {
                    Ok(Ok(resp)) => State::Done(Ok(resp.data)),
                    _ => State::Queued,
                };
            }
        }
    }

    /// Report the results at the front, in order.
    fn report_done(&mut self) {
        while matches!(
            self.slots.front(),
            Some(Slot {
                state: State::Done(_),
                ..
            })
        ) {
            if let Some(Slot {
                state: State::Done(result),
                ..
            }) = self.slots.pop_front()
            {
                let _ = self.results.send(result);
            }
        }
    }
}
