//! Test PKI for the TLS mock: a throw-away CA and a leaf for the provider host names.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// DNS names the leaf certificate is valid for (besides IP 127.0.0.1).
pub const LEAF_DNS_NAMES: &[&str] = &["api.openai.com", "api.anthropic.com", "localhost"];

/// A freshly minted CA plus the rustls server config presenting a leaf it signed.
pub(crate) struct MockPki {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Mints a CA and a leaf (both with SubjectKeyIdentifier and AuthorityKeyIdentifier) and
/// builds a ring-backed rustls server config offering ALPN `h2` and `http/1.1`.
pub(crate) fn mint() -> anyhow::Result<MockPki> {
    let ca_key = KeyPair::generate().context("generating CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keyward-testkit mock CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "keyward-testkit");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.use_authority_key_identifier_extension = true;
    let ca_cert = ca_params.self_signed(&ca_key).context("self-signing CA")?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().context("generating leaf key")?;
    let names: Vec<String> = LEAF_DNS_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let mut leaf_params = CertificateParams::new(names).context("leaf params")?;
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "api.openai.com");
    // ExplicitNoCa makes rcgen write SubjectKeyIdentifier and basicConstraints CA:FALSE.
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .context("signing leaf")?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("rustls server certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(MockPki {
        ca_pem,
        server_config: Arc::new(config),
    })
}
