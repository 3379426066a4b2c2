//! `GET /sandbox`: the API's filters and sort, as tables.
//!
//! Filters (every one given must hold): `id` / `name` prefix (case-insensitive), `labels`
//! (JSON object), `states`, `snapshots`, `regionIds` (the target), `sandboxClasses`,
//! `isPublic`, `isRecoverable`, `min|max` `Cpu` / `MemoryGiB` / `DiskGiB`, and `createdAt`,
//! `lastEvent` (the last activity) and `autoDestroyAt` `After` / `Before` (RFC 3339). Sort:
//! `sort` ∈ `name`, `cpu`, `memoryGib`, `diskGib`, `lastActivityAt` (default), `createdAt`;
//! `order` ∈ `asc`, `desc` (default), ties broken by id, so cursor paging is stable.

use crate::error::Failure;
use crate::store::Record;
use crate::util::query_get;
use forge_wire::StringMap;
use std::cmp::Ordering;

/// One parsed filter.
type Filter = Box<dyn Fn(&Record) -> bool + Send>;

/// Every value of a repeatable query key (`k`, `k[]`, comma-separated).
fn many(q: &[(String, String)], key: &str) -> Vec<String> {
    let bracket = format!("{key}[]");
    q.iter()
        .filter(|(k, _)| k == key || *k == bracket)
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect()
}

fn number(q: &[(String, String)], key: &str) -> Result<Option<f64>, Failure> {
    match query_get(q, key) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| Failure::bad_request(format!("{key} must be a number"))),
    }
}

fn flag(q: &[(String, String)], key: &str) -> Result<Option<bool>, Failure> {
    match query_get(q, key) {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(Failure::bad_request(format!("{key} must be true or false"))),
    }
}

/// A timestamp as seconds since the epoch (RFC 3339 in, as the records hold them).
fn time(text: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(text))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// The filters a query asks for.
pub fn filters(q: &[(String, String)]) -> Result<Vec<Filter>, Failure> {
    let mut out: Vec<Filter> = Vec::new();
    if let Some(p) = query_get(q, "id").filter(|p| !p.is_empty()) {
        let p = p.to_lowercase();
        out.push(Box::new(move |r| {
            r.sandbox.id.to_lowercase().starts_with(&p)
        }));
    }
    if let Some(p) = query_get(q, "name").filter(|p| !p.is_empty()) {
        let p = p.to_lowercase();
        out.push(Box::new(move |r| {
            r.sandbox.name.to_lowercase().starts_with(&p)
        }));
    }
    if let Some(v) = query_get(q, "labels").filter(|v| !v.is_empty()) {
        let labels: StringMap = serde_json::from_str(v)
            .map_err(|_| Failure::bad_request("labels must be a JSON object of strings"))?;
        out.push(Box::new(move |r| {
            labels
                .iter()
                .all(|(k, v)| r.sandbox.labels.get(k) == Some(v))
        }));
    }
    for (key, field) in [
        (
            "states",
            (|r: &Record| r.sandbox.state.as_str().to_string()) as fn(&Record) -> String,
        ),
        ("snapshots", |r| {
            r.sandbox.snapshot.clone().unwrap_or_default()
        }),
        ("regionIds", |r| r.sandbox.target.clone()),
        ("sandboxClasses", |r| {
            r.sandbox.sandbox_class.clone().unwrap_or_default()
        }),
    ] {
        let wanted = many(q, key);
        if !wanted.is_empty() {
            out.push(Box::new(move |r| wanted.contains(&field(r))));
        }
    }
    for (key, field) in [
        (
            "isPublic",
            (|r: &Record| r.sandbox.public) as fn(&Record) -> bool,
        ),
        ("isRecoverable", |r| r.sandbox.recoverable.unwrap_or(false)),
    ] {
        if let Some(want) = flag(q, key)? {
            out.push(Box::new(move |r| field(r) == want));
        }
    }
    for (min, max, field) in [
        (
            "minCpu",
            "maxCpu",
            (|r: &Record| r.sandbox.cpu) as fn(&Record) -> f64,
        ),
        ("minMemoryGiB", "maxMemoryGiB", |r| r.sandbox.memory),
        ("minDiskGiB", "maxDiskGiB", |r| r.sandbox.disk),
    ] {
        if let Some(lo) = number(q, min)? {
            out.push(Box::new(move |r| field(r) >= lo));
        }
        if let Some(hi) = number(q, max)? {
            out.push(Box::new(move |r| field(r) <= hi));
        }
    }
    for (after, before, field) in [
        (
            "createdAtAfter",
            "createdAtBefore",
            (|r: &Record| r.sandbox.created_at.clone()) as fn(&Record) -> Option<String>,
        ),
        ("lastEventAfter", "lastEventBefore", |r| {
            r.sandbox.last_activity_at.clone()
        }),
        ("autoDestroyAtAfter", "autoDestroyAtBefore", |_| None),
    ] {
        for (key, is_after) in [(after, true), (before, false)] {
            let Some(v) = query_get(q, key).filter(|v| !v.is_empty()) else {
                continue;
            };
            let at = time(v)
                .ok_or_else(|| Failure::bad_request(format!("{key} must be an RFC 3339 time")))?;
            out.push(Box::new(move |r| {
                field(r).and_then(|t| time(&t)).is_some_and(
                    |t| {
                        if is_after {
                            t > at
                        } else {
                            t < at
                        }
                    },
                )
            }));
        }
    }
    Ok(out)
}

/// Sorts records as the query asks (default: last activity, newest first).
pub fn sort(q: &[(String, String)], records: &mut [Record]) -> Result<(), Failure> {
    type Key = fn(&Record, &Record) -> Ordering;
    let by: Key = match query_get(q, "sort").unwrap_or("lastActivityAt") {
        "name" => |a, b| a.sandbox.name.cmp(&b.sandbox.name),
        "cpu" => |a, b| a.sandbox.cpu.partial_cmp(&b.sandbox.cpu).unwrap_or(Ordering::Equal),
        "memoryGib" => |a, b| {
            a.sandbox
                .memory
                .partial_cmp(&b.sandbox.memory)
                .unwrap_or(Ordering::Equal)
        },
        "diskGib" => |a, b| {
            a.sandbox
                .disk
                .partial_cmp(&b.sandbox.disk)
                .unwrap_or(Ordering::Equal)
        },
        "createdAt" => |a, b| {
            let t = |r: &Record| r.sandbox.created_at.as_deref().and_then(time).unwrap_or(0.0);
            t(a).partial_cmp(&t(b)).unwrap_or(Ordering::Equal)
        },
        "lastActivityAt" | "" => |a, b| {
            let t = |r: &Record| {
                r.sandbox
                    .last_activity_at
                    .as_deref()
                    .and_then(time)
                    .unwrap_or(0.0)
            };
            t(a).partial_cmp(&t(b)).unwrap_or(Ordering::Equal)
        },
        other => {
            return Err(Failure::bad_request(format!(
                "sort must be one of name, cpu, memoryGib, diskGib, lastActivityAt, createdAt (got {other})"
            )))
        }
    };
    let desc = match query_get(q, "order").unwrap_or("desc") {
        "desc" | "" => true,
        "asc" => false,
        other => {
            return Err(Failure::bad_request(format!(
                "order must be asc or desc (got {other})"
            )))
        }
    };
    records.sort_by(|a, b| {
        let o = by(a, b);
        let o = if desc { o.reverse() } else { o };
        o.then_with(|| a.sandbox.id.cmp(&b.sandbox.id))
    });
    Ok(())
}
