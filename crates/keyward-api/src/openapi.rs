//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "keyward control API", description = "Secret bundles, sessions, tenants and tokens of keyward, a credential broker for AI agents."),
    paths(
        healthz, readyz, openapi_json, ca_pem,
        create_tenant, whoami, create_token, revoke_token,
        create_bundle, list_bundles, get_bundle, replace_bundle, patch_bundle, delete_bundle,
        rotate_master_key,
        list_audit, verify_audit,
        put_limits, get_limits, clear_limits, usage,
        create_session, list_sessions, get_session, end_session, revoke_session, resume_session,
        session_env, session_events,
        create_agent, list_agents, get_agent, delete_agent, rotate_agent_token, attach_bundle,
        detach_bundle, agent_sessions,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
