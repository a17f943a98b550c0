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
    /// A phone number node (read before a register is retried).
    Phone,
    /// `{waba-id}/subscribed_apps` (subscribe or unsubscribe the app).
    SubscribedApps,
    /// `{waba-id}/assigned_users`.
    AssignedUsers,
    /// `{credit-line-id}/whatsapp_credit_sharing_and_attach`.
    CreditSharing,
    /// `{phone-number-id}/register`.
    Register,
    /// `{phone-number-id}/deregister`.
    Deregister,
    /// `{phone-number-id}/smb_app_data`.
    SmbAppData,
}

impl GraphRoute {
    /// Every route.
    pub const ALL: [GraphRoute; 13] = [
        Self::DebugToken,
        Self::Waba,
        Self::PhoneNumbers,
        Self::ClientWabas,
        Self::OwnedWabas,
        Self::OauthAccessToken,
        Self::Phone,
        Self::SubscribedApps,
        Self::AssignedUsers,
        Self::CreditSharing,
        Self::Register,
        Self::Deregister,
        Self::SmbAppData,
    ];

    /// The route named `name` ([`GraphRoute::name`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The route's label.
    pub fn name(self) -> &'static str {
        match self {
            Self::DebugToken => "debug_token",
            Self::Waba => "waba",
            Self::PhoneNumbers => "phone_numbers",
            Self::ClientWabas => "client_wabas",
            Self::OwnedWabas => "owned_wabas",
            Self::OauthAccessToken => "oauth_access_token",
            Self::Phone => "phone",
            Self::SubscribedApps => "subscribed_apps",
            Self::AssignedUsers => "assigned_users",
            Self::CreditSharing => "credit_sharing",
            Self::Register => "register",
            Self::Deregister => "deregister",
            Self::SmbAppData => "smb_app_data",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GraphRoute;

    /// How many routes there are: the last arm's number below, plus one.
    const COUNT: usize = 13;

    /// The match has no wildcard: a new route does not compile until it is numbered here
    /// (and [`COUNT`] raised), and then the test fails until it is in [`GraphRoute::ALL`]
    /// too (other replicas' throttle gates are read by name).
    fn position(r: GraphRoute) -> usize {
        match r {
            GraphRoute::DebugToken => 0,
            GraphRoute::Waba => 1,
            GraphRoute::PhoneNumbers => 2,
            GraphRoute::ClientWabas => 3,
            GraphRoute::OwnedWabas => 4,
            GraphRoute::OauthAccessToken => 5,
            GraphRoute::Phone => 6,
            GraphRoute::SubscribedApps => 7,
            GraphRoute::AssignedUsers => 8,
            GraphRoute::CreditSharing => 9,
            GraphRoute::Register => 10,
            GraphRoute::Deregister => 11,
            GraphRoute::SmbAppData => 12,
        }
    }

    #[test]
    fn every_route_is_listed_once_and_reads_back_by_name() {
        assert_eq!(GraphRoute::ALL.len(), COUNT);
        assert_eq!(position(GraphRoute::SmbAppData), COUNT - 1);
        for (i, r) in GraphRoute::ALL.into_iter().enumerate() {
            assert_eq!(position(r), i, "{}", r.name());
            assert_eq!(GraphRoute::parse(r.name()), Some(r));
        }
        assert_eq!(GraphRoute::parse("nothing"), None);
    }
}
