//! Queue links over gRPC: the `QueueLink.Link` bidirectional stream. The caller side
//! implements broker/'s [`LinkConnector`] for [`Peers`] (one connection per peer, shared
//! by all of its links); the server side hands each new stream to a [`LinkHandler`]
//! (the node's broker). Frames are opaque bytes here: broker/ encodes them.

use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use super::pb::cluster::queue_link_client::QueueLinkClient;
use super::pb::cluster::queue_link_server::QueueLink;
use super::pb::cluster::LinkFrame;
use super::peers::Peers;
use crate::broker::{LinkConnector, LinkRx, LinkTx};

/// Serves the links other nodes open to this one.
pub trait LinkHandler: Send + Sync + 'static {
    /// Serve one link whose frames arrive on `incoming`; the frames of the returned
    /// receiver go back. An error refuses the stream (the node's app is stopped).
    fn serve(&self, incoming: LinkRx) -> Result<LinkRx, String>;
}

/// Forward a stream's frames into a channel until either ends.
fn pump<S>(mut stream: S, tx: LinkTx)
where
    S: Stream<Item = Result<LinkFrame, Status>> + Send + Unpin + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(frame)) => {
                        if tx.send(frame.payload).is_err() {
                            return;
                        }
                    }
                    Some(Err(status)) => {
                        debug!(%status, "queue link stream ended");
                        return;
                    }
                    None => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
}

/// A channel's frames as a stream of `LinkFrame`s.
fn frames(rx: LinkRx) -> impl Stream<Item = LinkFrame> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|payload| (LinkFrame { payload }, rx))
    })
}

/// `QueueLink.Link` on the server.
pub(crate) struct LinkService(pub(crate) Arc<dyn LinkHandler>);

type DownStream = Pin<Box<dyn Stream<Item = Result<LinkFrame, Status>> + Send>>;

#[tonic::async_trait]
impl QueueLink for LinkService {
    type LinkStream = DownStream;

    async fn link(
        &self,
        request: Request<Streaming<LinkFrame>>,
    ) -> Result<Response<DownStream>, Status> {
        let (tx, incoming) = mpsc::unbounded_channel();
        pump(request.into_inner(), tx);
        let outgoing = self.0.serve(incoming).map_err(Status::unavailable)?;
        Ok(Response::new(Box::pin(frames(outgoing).map(Ok))))
    }
}

impl LinkConnector for Peers {
    fn open(&self, node: u64) -> BoxFuture<'static, Result<(LinkTx, LinkRx), String>> {
        let client = self.link_client(node);
        Box::pin(async move {
            let mut client =
                client.ok_or_else(|| format!("node {node}: no address known for this peer"))?;
            let (up_tx, up_rx) = mpsc::unbounded_channel();
            let response = client
                .link(frames(up_rx))
                .await
                .map_err(|status| format!("node {node}: {}", status.message()))?;
            let (down_tx, down_rx) = mpsc::unbounded_channel();
            pump(response.into_inner(), down_tx);
            Ok((up_tx, down_rx))
        })
    }
}

/// A link client of a peer's channel.
pub(crate) type PeerLinkClient = QueueLinkClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        super::secret::AttachSecret,
    >,
>;
