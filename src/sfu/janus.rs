//! The Janus API over WebSocket (subprotocol `janus-protocol`): one session, plugin handles, requests matched
//! to their answers by transaction, everything else routed to the handle it came from.
//!
//! This is the transport half; [`super::videoroom`] speaks the VideoRoom plugin's language on top of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// What went wrong talking to Janus.
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    #[error("cannot connect to Janus at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("the connection to Janus is closed")]
    Closed,
    #[error("Janus did not answer {what} within {secs} s")]
    Timeout { what: String, secs: u64 },
    /// Janus (or the plugin) refused a request: `code` and `reason` as Janus gives them.
    #[error("Janus refused {what}: {reason} (code {code})")]
    Refused { what: String, code: i64, reason: String },
    #[error("unexpected answer from Janus to {what}: {answer}")]
    Unexpected { what: String, answer: String },
}

/// Credentials Janus may ask for (`admin/api_secret` and stored tokens in janus.jcfg).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub api_secret: Option<String>,
    pub token: Option<String>,
}

/// A request waiting for its answer.
struct Waiter {
    answer: oneshot::Sender<Value>,
    /// Janus's `ack` is the whole answer (a keepalive); otherwise an event or a result follows the ack.
    ack_answers: bool,
}

type Pending = Arc<Mutex<HashMap<String, Waiter>>>;

/// A connected Janus session. Cheap to share (`Arc`); dropping the last reference closes the socket.
pub struct Janus {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    handles: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>>,
    session: AtomicU64,
    next_tx: AtomicU64,
    tx_prefix: String,
    creds: Credentials,
    timeout: Duration,
    closed: watch::Receiver<bool>,
}

impl Janus {
    /// Open the WebSocket and create a session. A task sends keepalives every `keepalive` until the socket
    /// closes (Janus drops a session that is silent for 60 s by default).
    pub async fn connect(url: &str, creds: Credentials, keepalive: Duration) -> Result<Arc<Janus>, JanusError> {
        let mut req = url.into_client_request().map_err(|source| JanusError::Connect { url: url.into(), source })?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse().expect("static header"));
        let (ws, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req))
            .await
            .map_err(|_| JanusError::Timeout { what: format!("a connection to {url}"), secs: 10 })?
            .map_err(|source| JanusError::Connect { url: url.into(), source })?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (closed_tx, closed) = watch::channel(false);
        let pending: Pending = Default::default();
        let handles: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>> = Default::default();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        {
            let (pending, handles) = (pending.clone(), handles.clone());
            tokio::spawn(async move {
                while let Some(Ok(m)) = stream.next().await {
                    let text = match m {
                        Message::Text(t) => t,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else {
                        log::warn!("janus: ignoring a message that is not JSON");
                        continue;
                    };
                    route(&v, &pending, &handles);
                }
                // Closed first, then wake everyone (pending requests fail, handle event streams end): whoever
                // is woken sees `is_closed()`, and a request registered after the clear sees it too (`request`
                // checks after registering) instead of waiting its whole timeout for an answer.
                let _ = closed_tx.send(true);
                pending.lock().unwrap().clear();
                handles.lock().unwrap().clear();
            });
        }
        let mut prefix = [0u8; 6];
        getrandom::fill(&mut prefix).ok();
        let j = Arc::new(Janus {
            out,
            pending,
            handles,
            session: AtomicU64::new(0),
            next_tx: AtomicU64::new(1),
            tx_prefix: prefix.iter().map(|b| format!("{b:02x}")).collect(),
            creds,
            timeout: Duration::from_secs(10),
            closed,
        });
        let r = j.request("create a session", json!({"janus": "create"})).await?;
        let id = r["data"]["id"].as_u64().ok_or_else(|| unexpected("create", &r))?;
        j.session.store(id, Ordering::Relaxed);
        let weak = Arc::downgrade(&j);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(keepalive);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(j) = weak.upgrade() else { break };
                if j.is_closed() {
                    break;
                }
                if let Err(e) = j.request("keepalive", json!({"janus": "keepalive"})).await {
                    log::warn!("janus keepalive: {e}");
                }
            }
        });
        Ok(j)
    }

    pub fn session_id(&self) -> u64 {
        self.session.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves when the socket has closed (Janus went away, or the session was dropped).
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Send one request and wait for its answer (an asynchronous plugin request's `event`, not its `ack`; a
    /// keepalive gets only the `ack`).
    pub async fn request(&self, what: &str, mut body: Value) -> Result<Value, JanusError> {
        let ack_answers = body["janus"] == "keepalive";
        let n = self.next_tx.fetch_add(1, Ordering::Relaxed);
        let tx = format!("{}-{n}", self.tx_prefix);
        body["transaction"] = json!(tx);
        let s = self.session_id();
        if s != 0 && body.get("session_id").is_none() {
            body["session_id"] = json!(s);
        }
        if let Some(secret) = &self.creds.api_secret {
            body["apisecret"] = json!(secret);
        }
        if let Some(token) = &self.creds.token {
            body["token"] = json!(token);
        }
        let (done, answer) = oneshot::channel();
        self.pending.lock().unwrap().insert(tx.clone(), Waiter { answer: done, ack_answers });
        if self.is_closed() || self.out.send(Message::Text(body.to_string().into())).is_err() {
            self.pending.lock().unwrap().remove(&tx);
            return Err(JanusError::Closed);
        }
        let r = match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(JanusError::Closed),
            Err(_) => {
                self.pending.lock().unwrap().remove(&tx);
                return Err(JanusError::Timeout { what: what.into(), secs: self.timeout.as_secs() });
            }
        };
        if r["janus"] == "error" {
            return Err(JanusError::Refused {
                what: what.into(),
                code: r["error"]["code"].as_i64().unwrap_or(0),
                reason: r["error"]["reason"].as_str().unwrap_or("unknown").into(),
            });
        }
        let data = &r["plugindata"]["data"];
        if let Some(reason) = data["error"].as_str() {
            return Err(JanusError::Refused {
                what: what.into(),
                code: data["error_code"].as_i64().unwrap_or(0),
                reason: reason.into(),
            });
        }
        Ok(r)
    }

    /// Attach a plugin handle; its events (those that answer no request) come out of the receiver.
    pub async fn attach(&self, plugin: &str) -> Result<(u64, mpsc::UnboundedReceiver<Value>), JanusError> {
        let r = self.request("attach", json!({"janus": "attach", "plugin": plugin})).await?;
        let id = r["data"]["id"].as_u64().ok_or_else(|| unexpected("attach", &r))?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.handles.lock().unwrap().insert(id, tx);
        Ok((id, rx))
    }

    /// A plugin message on `handle`, with an optional JSEP.
    pub async fn message(
        &self,
        what: &str,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, JanusError> {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(what, m).await
    }

    /// Destroy the session (best effort: used on shutdown).
    pub async fn destroy(&self) {
        let _ = self.request("destroy", json!({"janus": "destroy"})).await;
    }
}

fn route(
    v: &Value,
    pending: &Mutex<HashMap<String, Waiter>>,
    handles: &Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>,
) {
    if let Some(t) = v["transaction"].as_str() {
        let mut pending = pending.lock().unwrap();
        let ack = v["janus"] == "ack";
        if pending.get(t).is_some_and(|w| w.ack_answers || !ack) {
            let w = pending.remove(t).expect("just found");
            let _ = w.answer.send(v.clone());
            return;
        }
    }
    if v["janus"] == "ack" {
        return;
    }
    match v["sender"].as_u64() {
        Some(h) => {
            if let Some(q) = handles.lock().unwrap().get(&h) {
                let _ = q.send(v.clone());
            }
        }
        None => {
            // Session-level news: "timeout" means Janus dropped our session; nothing will work any more.
            if v["janus"] == "timeout" {
                log::warn!("janus: the session timed out");
                handles.lock().unwrap().clear();
            } else {
                log::debug!("janus: unrouted {v}");
            }
        }
    }
}

fn unexpected(what: &str, answer: &Value) -> JanusError {
    let mut answer = answer.to_string();
    answer.truncate(300);
    JanusError::Unexpected { what: what.into(), answer }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(pending: &Mutex<HashMap<String, Waiter>>, tx: &str, ack_answers: bool) -> oneshot::Receiver<Value> {
        let (answer, rx) = oneshot::channel();
        pending.lock().unwrap().insert(tx.into(), Waiter { answer, ack_answers });
        rx
    }

    #[test]
    fn a_keepalive_is_answered_by_its_ack_a_plugin_message_by_its_event() {
        let pending = Mutex::new(HashMap::new());
        let handles = Mutex::new(HashMap::new());
        let mut keepalive = waiting(&pending, "k", true);
        let mut message = waiting(&pending, "m", false);
        route(&json!({"janus": "ack", "transaction": "k"}), &pending, &handles);
        assert_eq!(keepalive.try_recv().unwrap()["janus"], "ack");
        route(&json!({"janus": "ack", "transaction": "m"}), &pending, &handles);
        assert!(message.try_recv().is_err(), "a plugin message's ack is not its answer");
        let event = json!({"janus": "event", "transaction": "m", "sender": 7, "plugindata": {"data": {}}});
        route(&event, &pending, &handles);
        assert_eq!(message.try_recv().unwrap()["janus"], "event");
        assert!(pending.lock().unwrap().is_empty());
    }

    #[test]
    fn events_without_a_waiting_request_go_to_their_handle() {
        let pending = Mutex::new(HashMap::new());
        let handles = Mutex::new(HashMap::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        handles.lock().unwrap().insert(7u64, tx);
        route(
            &json!({"janus": "event", "sender": 7, "plugindata": {"data": {"videoroom": "event"}}}),
            &pending,
            &handles,
        );
        route(&json!({"janus": "ack", "transaction": "gone"}), &pending, &handles);
        assert_eq!(rx.try_recv().unwrap()["sender"], 7);
        assert!(rx.try_recv().is_err(), "an ack is never a handle's event");
    }
}
