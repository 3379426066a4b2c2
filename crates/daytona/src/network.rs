//! A sandbox's outbound network: `networkBlockAll`, `networkAllowList` (addresses) and
//! `domainAllowList` (names), given at create ([`crate::CreateParams`]) or changed on a running
//! sandbox (`POST /sandbox/{id}/network-settings`, [`Client::update_network_settings`]).

use crate::call::CallOptions;
use crate::client::{seg, Client};
use crate::error::{Error, Result};
use crate::fetch::Method;
use crate::http::Req;
use forge_wire::{domains, Sandbox, UpdateNetworkSettings};

/// What `update_network_settings` changes: what is `None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// `true` blocks every outbound connection; `false` restores them.
    pub block_all: Option<bool>,
    /// Comma-separated IPv4 addresses or CIDR blocks the sandbox may reach (`""`: all again).
    pub allow_list: Option<String>,
    /// Names the sandbox may reach, and nothing else: `example.com` is that name only,
    /// `*.example.com` every name below it (not `example.com` itself). Empty: lifted.
    pub domain_allow_list: Option<Vec<String>>,
}

/// A `domainAllowList` as the wire carries it: `entries` checked (each one name or `*.`name,
/// at most [`domains::MAX_DOMAINS`]) and joined, normalised, with commas. Checked here so that
/// a bad list is an [`Error::InvalidArgument`] naming `domainAllowList` before anything is
/// sent, by the rules the embedded backend enforces.
pub fn domain_allow_list(entries: &[String]) -> Result<String> {
    domains::parse_entries(entries.iter().map(String::as_str))
        .map(|list| domains::render(&list))
        .map_err(Error::InvalidArgument)
}

impl Client {
    /// `POST /sandbox/{id}/network-settings`, as the official SDK's `updateNetworkSettings`:
    /// one request with every setting given, enforced at once on a running sandbox.
    pub async fn update_network_settings(
        &self,
        id: &str,
        settings: &NetworkSettings,
        opts: &CallOptions,
    ) -> Result<Sandbox> {
        if id.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "sandbox id must not be empty".into(),
            ));
        }
        if *settings == NetworkSettings::default() {
            return Err(Error::InvalidArgument(
                "network settings need networkBlockAll, networkAllowList or domainAllowList".into(),
            ));
        }
        let body = UpdateNetworkSettings {
            network_block_all: settings.block_all,
            network_allow_list: settings.allow_list.clone(),
            domain_allow_list: settings
                .domain_allow_list
                .as_deref()
                .map(domain_allow_list)
                .transpose()?,
        };
        let url = self
            .transport
            .api(&format!("/sandbox/{}/network-settings", seg(id)));
        self.transport
            .json(
                Req::new(Method::POST, url, "network settings").json(&body)?,
                &opts.deadline(self.transport.default_timeout()),
            )
            .await
    }

    /// [`Client::update_network_settings`] of `networkBlockAll` alone.
    pub async fn set_network_block_all(
        &self,
        id: &str,
        block_all: bool,
        opts: &CallOptions,
    ) -> Result<Sandbox> {
        let settings = NetworkSettings {
            block_all: Some(block_all),
            ..NetworkSettings::default()
        };
        self.update_network_settings(id, &settings, opts).await
    }
}
