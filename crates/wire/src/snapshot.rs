//! Snapshots and volumes (api.json `SnapshotDto`, `CreateSnapshot`, `PaginatedSnapshots`,
//! `VolumeDto`, `CreateVolume`).

use crate::sandbox::{BuildInfo, CreateBuildInfo};
use serde::{Deserialize, Serialize};

/// `SnapshotState`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    Building,
    #[default]
    Pending,
    Pulling,
    Snapshotting,
    Active,
    Inactive,
    Error,
    BuildFailed,
    Removing,
    #[serde(other)]
    Unknown,
}

/// `SnapshotDto`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub organization_id: String,
    #[serde(default)]
    pub general: bool,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    #[serde(default)]
    pub state: SnapshotState,
    #[serde(default)]
    pub size: Option<f64>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cpu: u32,
    #[serde(default)]
    pub gpu: u32,
    #[serde(default)]
    pub mem: u32,
    #[serde(default)]
    pub disk: u32,
    #[serde(default)]
    pub error_reason: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<BuildInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sandbox_id: Option<String>,
}

/// `CreateSnapshot`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSnapshot {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<CreateBuildInfo>,
}

/// `PaginatedSnapshots`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedSnapshots {
    pub items: Vec<Snapshot>,
    pub total: u64,
    pub page: u64,
    pub total_pages: u64,
}

/// `VolumeState`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    Creating,
    #[default]
    Ready,
    PendingCreate,
    PendingDelete,
    Deleting,
    Deleted,
    Error,
    #[serde(other)]
    Unknown,
}

/// `VolumeDto`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub organization_id: String,
    #[serde(default)]
    pub state: VolumeState,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default)]
    pub error_reason: Option<String>,
}

/// `CreateVolume`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVolume {
    pub name: String,
}
