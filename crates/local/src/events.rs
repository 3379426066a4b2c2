//! Sandbox events over Socket.IO at `/api/socket.io/`, as Daytona's notification gateway sends
//! them to the official SDKs: `sandbox.created` (the sandbox) and `sandbox.state.updated`
//! (`{sandbox, oldState, newState}`). The SDKs wait for states on these instead of polling,
//! and a connection they cannot open keeps retrying (Node then never exits). A connection
//! must present the API key as its `auth.token`, else it is refused.

use crate::util::same_secret;
use forge_wire::{Sandbox, SandboxState};
use serde_json::Value;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;

/// Where the SDKs look for the gateway: `<apiUrl path>/socket.io/`.
const PATH: &str = "/api/socket.io";

/// The events of one backend.
#[derive(Clone)]
pub struct Events {
    io: SocketIo,
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("authentication failed: missing or invalid API key")
    }
}

impl std::error::Error for Refused {}

impl Events {
    /// The layer to put in front of the router, and the handle that emits.
    pub fn new(api_key: String) -> (SocketIoLayer, Events) {
        let (layer, io) = SocketIo::builder().req_path(PATH).build_layer();
        let check = move |Data(auth): Data<Value>| {
            let key = api_key.clone();
            async move {
                let token = auth.get("token").and_then(Value::as_str).unwrap_or("");
                if same_secret(token, &key) {
                    Ok(())
                } else {
                    Err(Refused)
                }
            }
        };
        io.ns("/", (|_s: SocketRef| async {}).with(check));
        (layer, Events { io })
    }

    fn emit(&self, event: &'static str, data: Value) {
        let io = self.io.clone();
        tokio::spawn(async move {
            let _ = io.emit(event, &data).await;
        });
    }

    /// A sandbox was created.
    pub fn created(&self, sandbox: &Sandbox) {
        self.emit(
            "sandbox.created",
            serde_json::to_value(sandbox).unwrap_or(Value::Null),
        );
    }

    /// A sandbox's state changed (no event when it did not).
    pub fn state(&self, sandbox: &Sandbox, old: SandboxState) {
        if old == sandbox.state {
            return;
        }
        self.emit(
            "sandbox.state.updated",
            serde_json::json!({
                "sandbox": sandbox,
                "oldState": old.as_str(),
                "newState": sandbox.state.as_str(),
            }),
        );
    }
}
