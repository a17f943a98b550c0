//! The kinds of Graph call the proxy makes, as named in metrics, logs and the throttle gate.

/// A Graph route, as named in metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphRoute {
    /// `debug_token`.
    DebugToken,
    /// A WABA node.
    Waba,
    /// A WABA's phone numbers.
    PhoneNumbers,
    /// `client_whatsapp_business_accounts`.
    ClientWabas,
    /// `owned_whatsapp_business_accounts`.
    OwnedWabas,
    /// `oauth/access_token` (the code exchange).
    OauthAccessToken,
}

impl GraphRoute {
    /// The route's label.
    pub fn name(self) -> &'static str {
        match self {
            Self::DebugToken => "debug_token",
            Self::Waba => "waba",
            Self::PhoneNumbers => "phone_numbers",
            Self::ClientWabas => "client_wabas",
            Self::OwnedWabas => "owned_wabas",
            Self::OauthAccessToken => "oauth_access_token",
        }
    }
}
