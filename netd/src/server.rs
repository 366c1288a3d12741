//! netd's HTTP API (axum), JSON both ways; errors are `{"message": …}` with a status that says what went wrong
//! (400 bad input, 404 unknown network or endpoint, 409 conflict, 503 no addresses left, 500 the kernel said no).
//!
//! ```text
//! GET    /_ping
//! GET    /networks                      -> [Network]
//! POST   /networks            NetworkCreate -> Network
//! GET    /networks/{key}                -> Network      (key: id, name or unique id prefix)
//! DELETE /networks/{key}
//! POST   /networks/{key}/connect    EndpointRequest -> Endpoint
//! POST   /networks/{key}/disconnect EndpointRemove
//! POST   /ports/publish   PortPublish   -> [PublishedPort] (one per host port)
//! POST   /ports/unpublish PortUnpublish
//! ```

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::{EndpointRemove, EndpointRequest, ErrorBody, NetworkCreate, PortPublish, PortUnpublish};
use crate::service::{Netd, NetdError};

pub struct ApiError(u16, String);

impl From<NetdError> for ApiError {
    fn from(e: NetdError) -> ApiError {
        ApiError(e.status(), e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> ApiError {
        ApiError(400, e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!("{}", self.1);
        }
        (status, Json(ErrorBody { message: self.1 })).into_response()
    }
}

type Shared = Arc<Netd>;

pub fn router(netd: Shared) -> Router {
    Router::new()
        .route("/_ping", get(|| async { "OK" }))
        .route("/networks", get(list).post(create))
        .route("/networks/{key}", get(inspect).delete(remove))
        .route("/networks/{key}/connect", post(connect))
        .route("/networks/{key}/disconnect", post(disconnect))
        .route("/ports/publish", post(publish))
        .route("/ports/unpublish", post(unpublish))
        .with_state(netd)
}

async fn list(State(netd): State<Shared>) -> Response {
    Json(netd.list().await).into_response()
}

async fn create(
    State(netd): State<Shared>,
    body: Result<Json<NetworkCreate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let net = netd.create_network(req).await?;
    Ok((StatusCode::CREATED, Json(net)).into_response())
}

async fn inspect(State(netd): State<Shared>, Path(key): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(netd.inspect(&key).await?).into_response())
}

async fn remove(State(netd): State<Shared>, Path(key): Path<String>) -> Result<StatusCode, ApiError> {
    netd.remove_network(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn connect(
    State(netd): State<Shared>,
    Path(key): Path<String>,
    body: Result<Json<EndpointRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    Ok(Json(netd.connect(&key, req).await?).into_response())
}

async fn disconnect(
    State(netd): State<Shared>,
    Path(key): Path<String>,
    body: Result<Json<EndpointRemove>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body?;
    netd.disconnect(&key, &req.container_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn publish(
    State(netd): State<Shared>,
    body: Result<Json<PortPublish>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    Ok(Json(netd.publish(&req.network, &req.container_id, &req.ports).await?).into_response())
}

async fn unpublish(
    State(netd): State<Shared>,
    body: Result<Json<PortUnpublish>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body?;
    netd.unpublish(&req.container_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
