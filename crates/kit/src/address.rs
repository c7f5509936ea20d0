//! Postal addresses shared by the services that keep them (users' address book, orders' shipping
//! snapshot): required lines, bounded lengths, ISO 3166-1 alpha-2 country codes.

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;

/// Every ISO 3166-1 alpha-2 code currently assigned.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO \
BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES \
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ \
IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM \
MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW \
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO \
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// An ISO 3166-1 alpha-2 country code, uppercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && ISO_3166_ALPHA2.split(' ').any(|c| c == code) {
            Ok(Self(code))
        } else {
            Err("must be an ISO 3166-1 alpha-2 country code, e.g. US or DE".into())
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The OpenAPI schema of a country code field: a string, one of the assigned ISO 3166-1 alpha-2
/// codes (the server takes them in lowercase too).
pub fn country_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("ISO 3166-1 alpha-2, e.g. `US`"))
        .enum_values(Some(ISO_3166_ALPHA2.split(' ')))
        .build()
}

/// A required line of text: trimmed, 1 to `max` characters.
pub fn required_line(raw: &str, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is required".into());
    }
    optional_line(trimmed, max)
}

/// An optional line: trimmed, at most `max` characters, no control characters.
pub fn optional_line(raw: &str, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

/// A complete, valid postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PostalAddress {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, uppercase.
    pub country: String,
}

/// The fields of an address as they arrive, before parsing.
#[derive(Debug, Clone, Default)]
pub struct AddressFields<'a> {
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub state: Option<&'a str>,
    pub postal_code: &'a str,
    pub country: &'a str,
}

impl PostalAddress {
    /// Parses every field, listing each bad one.
    pub fn parse(fields: AddressFields<'_>) -> Result<Self, crate::ApiError> {
        let mut errors = FieldErrors::default();
        let line1 = errors.take("line1", required_line(fields.line1, 200));
        let line2 = errors.take("line2", fields.line2.map(|l| optional_line(l, 200)).transpose());
        let city = errors.take("city", required_line(fields.city, 100));
        let state = errors.take("state", fields.state.map(|s| optional_line(s, 100)).transpose());
        let postal_code = errors.take("postal_code", required_line(fields.postal_code, 20));
        let country = errors.take("country", CountryCode::parse(fields.country));
        errors.finish(|| {
            Some(PostalAddress {
                line1: line1?,
                line2: line2?.filter(|l| !l.is_empty()),
                city: city?,
                state: state?.filter(|s| !s.is_empty()),
                postal_code: postal_code?,
                country: country?.into_inner(),
            })
        })
    }

    /// Parses an address as a client sends it (`contracts::users::AddressBody`).
    pub fn parse_body(body: &contracts::users::AddressBody) -> Result<Self, crate::ApiError> {
        Self::parse(AddressFields {
            line1: &body.line1,
            line2: body.line2.as_deref(),
            city: &body.city,
            state: body.state.as_deref(),
            postal_code: &body.postal_code,
            country: &body.country,
        })
    }
}

/// Not blank, no control characters: what [`required_line`] accepts, its length aside.
const NON_BLANK_LINE: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// No control characters: what [`optional_line`] accepts, its length aside.
const NO_CONTROL_CHARACTERS: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";

/// Writes what [`PostalAddress::parse`] requires into the OpenAPI schema of an address body
/// (`contracts::users::AddressBody` and its kin carry the shape; the rules are kit's): each
/// line's length and characters, and the country codes. A `utoipa::Modify` of the service that
/// documents the body calls it on that schema.
pub fn document_address_rules(object: &mut utoipa::openapi::schema::Object) {
    use utoipa::openapi::{RefOr, Schema};
    let lines = [
        ("line1", 200, true),
        ("line2", 200, false),
        ("city", 100, true),
        ("state", 100, false),
        ("postal_code", 20, true),
    ];
    for (name, max, required) in lines {
        if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(name) {
            field.max_length = Some(max);
            if required {
                field.min_length = Some(1);
                field.pattern = Some(NON_BLANK_LINE.to_owned());
            } else {
                field.pattern = Some(NO_CONTROL_CHARACTERS.to_owned());
            }
        }
    }
    object.properties.insert("country".to_owned(), country_code_schema().into());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AddressFields<'static> {
        AddressFields {
            line1: "1 Infinite Loop",
            city: "Cupertino",
            state: Some("CA"),
            postal_code: "95014",
            country: "us",
            ..AddressFields::default()
        }
    }

    #[test]
    fn country_codes_are_checked_against_iso_3166() {
        assert_eq!(CountryCode::parse("de").unwrap().into_inner(), "DE");
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("USA").is_err());
    }

    #[test]
    fn a_valid_address_parses_with_uppercase_country() {
        let address = PostalAddress::parse(fields()).unwrap();
        assert_eq!(address.country, "US");
        assert_eq!(address.line2, None);
    }

    #[test]
    fn every_bad_field_is_listed() {
        let err = PostalAddress::parse(AddressFields { line1: " ", city: "", country: "ZZ", ..fields() })
            .unwrap_err();
        let names: Vec<_> = err.field_errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["line1", "city", "country"]);
    }
}
