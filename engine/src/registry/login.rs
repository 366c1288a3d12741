//! `berth login` and `berth logout`: check the credentials against the registry, then record or forget them.

use std::path::Path;

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;

use super::auth::{self, Credentials};
use super::client::{self, RegistryOptions};
use super::error::{RegistryError, chain};
use crate::image::Reference;

/// A repository that need not exist: the check only needs the registry to say whether the credentials are good.
const PROBE_REPOSITORY: &str = "berth/login-check";

/// Verifies `credentials` with `registry` and writes them to the credentials file at `config_path`.
///
/// The check is Docker's: a token request with the credentials when the registry answers `/v2/` with a Bearer
/// challenge (a refused token is a failed login), else an authenticated request with basic auth. A registry that
/// asks for no authentication accepts any credentials, as with Docker.
pub async fn login(
    registry: &str,
    credentials: &Credentials,
    config_path: &Path,
    opts: &RegistryOptions,
) -> Result<(), RegistryError> {
    verify(registry, credentials, opts).await?;
    auth::store_credentials(config_path, registry, credentials)
}

/// Forgets the credentials of `registry` in the file at `config_path`; false when it had none.
pub fn logout(registry: &str, config_path: &Path) -> Result<bool, RegistryError> {
    auth::remove_credentials(config_path, registry)
}

async fn verify(registry: &str, credentials: &Credentials, opts: &RegistryOptions) -> Result<(), RegistryError> {
    let probe = Reference {
        registry: registry.to_string(),
        repository: PROBE_REPOSITORY.into(),
        tag: Some("latest".into()),
        digest: None,
    };
    let oref = client::to_oci(&probe);
    // A fresh client: a cached one keeps the credentials it was first given.
    let client = client::build(registry, opts);
    let basic = RegistryAuth::Basic(credentials.username.clone(), credentials.password.clone());
    let failed = |detail: String| RegistryError::LoginFailed { registry: registry.to_string(), detail };
    let refused = || failed(format!("the registry refused the credentials of user {:?}", credentials.username));
    match client.auth(&oref, &basic, RegistryOperation::Pull).await {
        Ok(Some(_token)) => return Ok(()),
        Ok(None) => {}
        Err(OciDistributionError::AuthenticationFailure(_) | OciDistributionError::UnauthorizedError { .. }) => {
            return Err(refused());
        }
        Err(OciDistributionError::RequestError(e)) => {
            return Err(failed(format!("cannot reach the registry: {}", chain(&e))));
        }
        Err(e) => return Err(failed(chain(&e))),
    }
    match client.list_tags(&oref, &basic, Some(1), None).await {
        Ok(_) => Ok(()),
        Err(OciDistributionError::UnauthorizedError { .. }) => Err(refused()),
        Err(OciDistributionError::ServerError { code: 401, .. }) => Err(refused()),
        Err(OciDistributionError::RegistryError { envelope, .. })
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::Unauthorized | oci_client::errors::OciErrorCode::Denied
                )
            }) =>
        {
            Err(refused())
        }
        // Not found, or any other answer past authentication: the credentials were accepted.
        Err(OciDistributionError::RegistryError { .. } | OciDistributionError::ServerError { code: 404, .. }) => Ok(()),
        Err(OciDistributionError::RequestError(e)) => Err(failed(format!("cannot reach the registry: {}", chain(&e)))),
        Err(e) => Err(failed(chain(&e))),
    }
}
