//! keyward's own CA and the leaf certificates it mints for intercepted hosts (proxy mode).
//! ECDSA P-256 throughout. Leaves carry SAN, SubjectKeyIdentifier and AuthorityKeyIdentifier
//! (Python 3.13's default context rejects certificates without them) and are cached per host.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MintError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the minted key could not be loaded: {0}")]
    Key(String),
}

/// The subject and key usages of keyward's CA. Built the same way every time, so an issuer can
/// be rebuilt from the stored key alone (the key identifier derives from the public key).
fn ca_params() -> Result<CertificateParams, MintError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "keyward local CA");
    dn.push(DnType::OrganizationName, "keyward");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// A freshly generated CA: its certificate (public) and private key, both PEM.
pub struct NewCa {
    pub cert_pem: String,
    /// Secret: the caller seals it before storing.
    pub key_pem: zeroize::Zeroizing<String>,
}

/// Generate the install's CA (done once, at initialisation). Valid for ten years.
pub fn generate_ca() -> Result<NewCa, MintError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = ca_params()?;
    let now = time_now();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok(NewCa {
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
    })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Mints and caches leaf certificates signed by the CA; plugs into rustls as the resolver.
pub struct Minter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    leaf_key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    cache: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minter([REDACTED])")
    }
}

/// Past this many hosts the cache starts over.
const MAX_CACHED_LEAVES: usize = 10_000;

impl Minter {
    pub fn new(ca_cert_pem: &str, ca_key_pem: &str) -> Result<Self, MintError> {
        let ca_key = KeyPair::from_pem(ca_key_pem)?;
        let issuer = Issuer::new(ca_params()?, ca_key);
        let ca_der = rustls_pki_types::pem::PemObject::from_pem_slice(ca_cert_pem.as_bytes())
            .map_err(|e| MintError::Key(e.to_string()))?;
        // One leaf key for every host: leaves differ only in names, and minting stays cheap.
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing_key = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(der)
            .map_err(|e| MintError::Key(e.to_string()))?;
        Ok(Self {
            issuer,
            ca_der,
            leaf_key,
            signing_key,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The certificate chain and key for `host`, minted on first use.
    pub fn certified_key(&self, host: &str) -> Result<Arc<CertifiedKey>, MintError> {
        let host = host.to_ascii_lowercase();
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&host).cloned()) {
            return Ok(hit);
        }
        let mut params = CertificateParams::new(vec![host.clone()])?;
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, host.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time_now();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let leaf = params.signed_by(&self.leaf_key, &self.issuer)?;
        let key = Arc::new(CertifiedKey::new(
            vec![leaf.der().clone(), self.ca_der.clone()],
            self.signing_key.clone(),
        ));
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= MAX_CACHED_LEAVES {
                cache.clear();
            }
            cache.insert(host, key.clone());
        }
        Ok(key)
    }
}

impl ResolvesServerCert for Minter {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        match self.certified_key(name) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::error!(error = %e, "minting a leaf certificate failed");
                None
            }
        }
    }
}

/// Always the same certificate: for a connection whose host is known without SNI.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A TLS configuration serving one minted certificate (an IP-literal CONNECT host).
pub fn fixed_server_config(key: Arc<CertifiedKey>) -> Arc<rustls::ServerConfig> {
    build_server_config(Arc::new(FixedCert(key)))
}

/// The server-side TLS configuration of intercepted connections: HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(minter: Arc<Minter>) -> Arc<rustls::ServerConfig> {
    build_server_config(minter)
}

fn build_server_config(resolver: Arc<dyn ResolvesServerCert>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions();
    let mut config = match builder {
        Ok(b) => b.with_no_client_auth().with_cert_resolver(resolver),
        // The ring provider supports the default protocol versions; this cannot fail.
        Err(_) => unreachable!("ring supports TLS 1.2 and 1.3"),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn minted_leaf_chains_to_the_ca() {
        let ca = generate_ca().unwrap();
        let minter = Minter::new(&ca.cert_pem, &ca.key_pem).unwrap();
        let key = minter.certified_key("API.openai.com").unwrap();
        assert_eq!(key.cert.len(), 2);
        // Cached: the same Arc comes back.
        let again = minter.certified_key("api.openai.com").unwrap();
        assert!(Arc::ptr_eq(&key, &again));
        // Verify the chain with rustls' webpki verifier against the CA alone.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(minter.ca_der.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let name = rustls_pki_types::ServerName::try_from("api.openai.com").unwrap();
        verifier
            .verify_server_cert(
                &key.cert[0],
                &key.cert[1..],
                &name,
                &[],
                rustls_pki_types::UnixTime::now(),
            )
            .unwrap();
        // A restarted minter (same stored CA) issues leaves that chain too.
        let minter2 = Minter::new(&ca.cert_pem, &ca.key_pem).unwrap();
        let key2 = minter2.certified_key("api.anthropic.com").unwrap();
        let name2 = rustls_pki_types::ServerName::try_from("api.anthropic.com").unwrap();
        verifier
            .verify_server_cert(
                &key2.cert[0],
                &[],
                &name2,
                &[],
                rustls_pki_types::UnixTime::now(),
            )
            .unwrap();
    }
}
