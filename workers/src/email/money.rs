//! The `money` template filter: an amount in minor units (cents) as units with the currency's
//! decimals, e.g. `{{ total_cents | money(currency) }}` renders `1250` in `EUR` as `12.50 EUR`.

use fleet_schemas::codes::minor_unit_digits;
use minijinja::{Error, ErrorKind, Value};

/// `cents` minor units of `currency` as units with the currency's decimals and its code
/// (`-12.50 EUR`, `1250 JPY`, `1.250 KWD`); an unknown code gets two decimals.
pub fn format_money(cents: i64, currency: &str) -> String {
    let digits = minor_unit_digits(currency);
    let sign = if cents < 0 { "-" } else { "" };
    let magnitude = cents.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{magnitude} {currency}");
    }
    let scale = 10u64.pow(digits);
    let units = magnitude / scale;
    let minor = magnitude % scale;
    let width = digits as usize;
    format!("{sign}{units}.{minor:0width$} {currency}")
}

/// The filter registered as `money`. An undefined amount or currency is an undefined error (the
/// data lacks it), so it is reported as missing data rather than as a conversion failure; an
/// amount that is not an integer, or a currency that is not a string, fails the render rather
/// than printing something wrong.
pub(crate) fn money_filter(cents: Value, currency: Value) -> Result<String, Error> {
    if cents.is_undefined() || currency.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let cents = i64::try_from(cents)?;
    let currency = currency.as_str().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "money needs a currency code string",
        )
    })?;
    Ok(format_money(cents, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimal_currencies_print_cents_padded() {
        assert_eq!(format_money(1250, "EUR"), "12.50 EUR");
        assert_eq!(format_money(5, "USD"), "0.05 USD");
        assert_eq!(format_money(100, "GBP"), "1.00 GBP");
        assert_eq!(format_money(123_456_789, "EUR"), "1234567.89 EUR");
    }

    #[test]
    fn zero_decimal_currencies_print_no_decimals() {
        assert_eq!(format_money(1250, "JPY"), "1250 JPY");
        assert_eq!(format_money(0, "JPY"), "0 JPY");
        assert_eq!(format_money(-300, "JPY"), "-300 JPY");
    }

    #[test]
    fn three_decimal_currencies_print_three() {
        assert_eq!(format_money(1250, "KWD"), "1.250 KWD");
        assert_eq!(format_money(7, "KWD"), "0.007 KWD");
    }

    #[test]
    fn zero_and_negative_amounts_keep_their_sign_and_decimals() {
        assert_eq!(format_money(0, "EUR"), "0.00 EUR");
        assert_eq!(format_money(-1250, "EUR"), "-12.50 EUR");
        // Below one unit the sign must not vanish with the zero units.
        assert_eq!(format_money(-5, "EUR"), "-0.05 EUR");
    }

    #[test]
    fn extreme_amounts_do_not_overflow() {
        assert_eq!(format_money(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
        assert_eq!(format_money(i64::MAX, "JPY"), "9223372036854775807 JPY");
    }
}
