//! `GET /events?since=&until=&filters=`: the recent history, then live events, one JSON message per line as
//! Docker sends them. The bus itself is [`crate::events`].

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

use super::AppState;
use super::containers::parse_filters;
use super::error::{ApiError, ApiResult};
use crate::events::{Filter, parse_time};

/// `GET /events`.
pub async fn events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let time = |key: &str| -> ApiResult<Option<i64>> {
        match params.get(key).filter(|v| !v.is_empty()) {
            Some(v) => parse_time(v).map(Some).map_err(|e| ApiError::bad_request(e.to_string())),
            None => Ok(None),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    let filter =
        Filter::new(parse_filters(params.get("filters"))?).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let lines = state.events.stream(since, until, filter).map(|e| {
        let mut line = serde_json::to_vec(e.as_ref()).unwrap_or_default();
        line.push(b'\n');
        Ok::<Bytes, Infallible>(Bytes::from(line))
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(lines)).into_response())
}
