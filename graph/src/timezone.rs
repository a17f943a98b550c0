//! Names of Graph's `timezone_id`s. A WABA's `timezone_id` uses the ad-account time zone ids
//! (the WABA reference links its "supported values" to that table:
//! <https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account>,
//! <https://developers.facebook.com/docs/marketing-api/reference/ad-account/timezone-ids/>).
//! Ids 0 to 141 are the table as Meta published it for years (stored copies of Meta's page,
//! and the `facebook_timezones` package copied from it); Meta has since numbered more zones,
//! whose names no source confirms, so those ids stay numbers.

/// The IANA name of each id from 0 to 141, one a line (`TZ_AMERICA_LOS_ANGELES`, id 1, is
/// `America/Los_Angeles`); line 0, `TZ_UNKNOWN`, is empty. One string rather than an array
/// of them: it costs the browser module no pointer table.
const TIMEZONES: &str = "\n\
America/Los_Angeles\n\
America/Denver\n\
Pacific/Honolulu\n\
America/Anchorage\n\
America/Phoenix\n\
America/Chicago\n\
America/New_York\n\
Asia/Dubai\n\
America/Argentina/San_Luis\n\
America/Argentina/Buenos_Aires\n\
America/Argentina/Salta\n\
Europe/Vienna\n\
Australia/Perth\n\
Australia/Broken_Hill\n\
Australia/Sydney\n\
Europe/Sarajevo\n\
Asia/Dhaka\n\
Europe/Brussels\n\
Europe/Sofia\n\
Asia/Bahrain\n\
America/La_Paz\n\
America/Noronha\n\
America/Campo_Grande\n\
America/Belem\n\
America/Sao_Paulo\n\
America/Nassau\n\
America/Dawson\n\
America/Vancouver\n\
America/Dawson_Creek\n\
America/Edmonton\n\
America/Rainy_River\n\
America/Regina\n\
America/Atikokan\n\
America/Iqaluit\n\
America/Toronto\n\
America/Blanc-Sablon\n\
America/Halifax\n\
America/St_Johns\n\
Europe/Zurich\n\
Pacific/Easter\n\
America/Santiago\n\
Asia/Shanghai\n\
America/Bogota\n\
America/Costa_Rica\n\
Asia/Nicosia\n\
Europe/Prague\n\
Europe/Berlin\n\
Europe/Copenhagen\n\
America/Santo_Domingo\n\
Pacific/Galapagos\n\
America/Guayaquil\n\
Europe/Tallinn\n\
Africa/Cairo\n\
Atlantic/Canary\n\
Europe/Madrid\n\
Europe/Helsinki\n\
Europe/Paris\n\
Europe/London\n\
Africa/Accra\n\
Europe/Athens\n\
America/Guatemala\n\
Asia/Hong_Kong\n\
America/Tegucigalpa\n\
Europe/Zagreb\n\
Europe/Budapest\n\
Asia/Jakarta\n\
Asia/Makassar\n\
Asia/Jayapura\n\
Europe/Dublin\n\
Asia/Jerusalem\n\
Asia/Kolkata\n\
Asia/Baghdad\n\
Atlantic/Reykjavik\n\
Europe/Rome\n\
America/Jamaica\n\
Asia/Amman\n\
Asia/Tokyo\n\
Africa/Nairobi\n\
Asia/Seoul\n\
Asia/Kuwait\n\
Asia/Beirut\n\
Asia/Colombo\n\
Europe/Vilnius\n\
Europe/Luxembourg\n\
Europe/Riga\n\
Africa/Casablanca\n\
Europe/Skopje\n\
Europe/Malta\n\
Indian/Mauritius\n\
Indian/Maldives\n\
America/Tijuana\n\
America/Hermosillo\n\
America/Mazatlan\n\
America/Mexico_City\n\
Asia/Kuala_Lumpur\n\
Africa/Lagos\n\
America/Managua\n\
Europe/Amsterdam\n\
Europe/Oslo\n\
Pacific/Auckland\n\
Asia/Muscat\n\
America/Panama\n\
America/Lima\n\
Asia/Manila\n\
Asia/Karachi\n\
Europe/Warsaw\n\
America/Puerto_Rico\n\
Asia/Gaza\n\
Atlantic/Azores\n\
Europe/Lisbon\n\
America/Asuncion\n\
Asia/Qatar\n\
Europe/Bucharest\n\
Europe/Belgrade\n\
Europe/Kaliningrad\n\
Europe/Moscow\n\
Europe/Samara\n\
Asia/Yekaterinburg\n\
Asia/Omsk\n\
Asia/Krasnoyarsk\n\
Asia/Irkutsk\n\
Asia/Yakutsk\n\
Asia/Vladivostok\n\
Asia/Magadan\n\
Asia/Kamchatka\n\
Asia/Riyadh\n\
Europe/Stockholm\n\
Asia/Singapore\n\
Europe/Ljubljana\n\
Europe/Bratislava\n\
America/El_Salvador\n\
Asia/Bangkok\n\
Africa/Tunis\n\
Europe/Istanbul\n\
America/Port_of_Spain\n\
Asia/Taipei\n\
Europe/Kiev\n\
America/Montevideo\n\
America/Caracas\n\
Asia/Ho_Chi_Minh\n\
Africa/Johannesburg";

/// The IANA name of Graph's time zone `id` (decimal text, as Graph sends it), when known.
pub fn timezone_name(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > 3 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let i = id.bytes().fold(0, |n, d| n * 10 + usize::from(d - b'0'));
    // The `i`th line, found byte by byte (the browser module carries no line iterator for it).
    let (mut line, mut start) = (0, 0);
    for (at, byte) in TIMEZONES.bytes().chain([b'\n']).enumerate() {
        if byte != b'\n' {
            continue;
        }
        if line == i {
            let name = &TIMEZONES[start..at];
            return (!name.is_empty()).then_some(name);
        }
        line += 1;
        start = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_s_ids_name_their_zones() {
        assert_eq!(timezone_name("1"), Some("America/Los_Angeles"));
        assert_eq!(timezone_name("47"), Some("Europe/Berlin"));
        assert_eq!(timezone_name("58"), Some("Europe/London"));
        assert_eq!(timezone_name("141"), Some("Africa/Johannesburg"));
        for unknown in ["0", "142", "480", "", "01x", "99999", "-1"] {
            assert_eq!(timezone_name(unknown), None, "{unknown}");
        }
    }
}
