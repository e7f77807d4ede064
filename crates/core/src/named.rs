//! Closed sets of values with one spelling each: backends, constructions, policies, vocabularies, …
//!
//! A type declared with [`named_enum!`](crate::named_enum) has its values listed once, with their
//! spellings (and aliases) next to them; the macro derives [`Named`] (every value, its name, parsing with
//! a message that lists the valid names), `Display` and `FromStr`. The command line parses any [`Named`]
//! type with one generic value parser (so the library crates need no clap), config files and Python use
//! `FromStr`, and serde uses the same names (a test per type checks that they agree:
//! [`assert_serde_spells_like_names`]).

/// A value of a closed set with one spelling each (see the [module](self)).
pub trait Named: Copy + Eq + std::fmt::Debug + 'static {
    /// What a value is called in messages (`"backend"`, `"construction"`).
    const KIND: &'static str;
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];

    /// The one spelling (command line, config, serde, Python).
    fn name(self) -> &'static str;

    /// Older or alternative spellings that parse to this value (never written).
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }

    /// Every name, comma-separated (for messages).
    fn names() -> String {
        Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
    }

    /// The value spelled `s` (its name or an alias).
    fn from_name(s: &str) -> Result<Self, UnknownName> {
        Self::ALL.iter().copied().find(|v| v.name() == s || v.aliases().contains(&s)).ok_or_else(|| UnknownName {
            kind: Self::KIND,
            given: s.to_string(),
            expected: Self::names(),
        })
    }
}

/// A spelling that names no value of a [`Named`] type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {given:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// What was being named (`"backend"`).
    pub kind: &'static str,
    /// What was given.
    pub given: String,
    /// The valid names, comma-separated.
    pub expected: String,
}

impl From<UnknownName> for crate::Error {
    fn from(e: UnknownName) -> Self {
        crate::Error::InvalidParameter { name: e.kind.replace(' ', "_"), reason: e.to_string() }
    }
}

/// Declares an enum whose values each have one spelling, and derives [`Named`], `Display` and `FromStr`
/// (with [`UnknownName`] as the error) for it:
///
/// ```
/// boltz_core::named_enum! {
///     /// A colour.
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum Colour: "colour" {
///         /// Red.
///         Red = "red",
///         /// Dark blue (`navy` still parses).
///         DarkBlue = "dark-blue" | "navy",
///     }
/// }
/// use boltz_core::named::Named;
/// assert_eq!("navy".parse::<Colour>(), Ok(Colour::DarkBlue));
/// assert_eq!(Colour::DarkBlue.to_string(), "dark-blue");
/// assert_eq!(Colour::ALL, &[Colour::Red, Colour::DarkBlue]);
/// let err = "green".parse::<Colour>().unwrap_err().to_string();
/// assert_eq!(err, r#"unknown colour "green" (expected one of: red, dark-blue)"#);
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $spelling:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in the order `--help` lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The one spelling (command line, config, serde, Python).
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $spelling),+ }
            }
        }

        impl $crate::named::Named for $name {
            const KIND: &'static str = $kind;
            const ALL: &'static [Self] = $name::ALL;
            fn name(self) -> &'static str {
                $name::name(self)
            }
            fn aliases(self) -> &'static [&'static str] {
                match self { $(Self::$variant => &[$($alias),*]),+ }
            }
        }

        $crate::display_and_parse_by_name!($name);
    };
}

/// `Display` as the [`Named`] name and `FromStr` from a name or an alias (with [`UnknownName`] as the
/// error), for [`named_enum!`] and [`spelled_by_name!`].
#[doc(hidden)]
#[macro_export]
macro_rules! display_and_parse_by_name {
    ($name:ty) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::named::Named::name(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::named::UnknownName;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                <Self as $crate::named::Named>::from_name(s)
            }
        }
    };
}

/// For a type with a hand-written [`Named`] impl (values that carry data, where [`named_enum!`] does not
/// apply): `Debug` and `Display` print its name, `FromStr` parses a name or an alias, and serde writes and
/// reads it by name (the calling crate depends on serde).
#[macro_export]
macro_rules! spelled_by_name {
    ($name:ty) => {
        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::named::Named::name(*self))
            }
        }

        $crate::display_and_parse_by_name!($name);

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str($crate::named::Named::name(*self))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                <::std::string::String as ::serde::Deserialize>::deserialize(d)?.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Checks that serde writes every value of `T` as its [`Named::name`] and reads every name and alias back
/// (for each `named_enum!` type that also derives serde's traits).
///
/// # Panics
/// When a spelling disagrees (the message names the value).
pub fn assert_serde_spells_like_names<T: Named + serde::Serialize + serde::de::DeserializeOwned>() {
    for &v in T::ALL {
        let written = serde_json::to_value(v).unwrap_or_else(|e| panic!("{v:?} does not serialize: {e}"));
        assert_eq!(written, serde_json::Value::String(v.name().into()), "serde and Named spell {v:?} alike");
        for s in std::iter::once(v.name()).chain(v.aliases().iter().copied()) {
            let read: T =
                serde_json::from_value(serde_json::Value::String(s.into())).unwrap_or_else(|e| panic!("{s:?} does not deserialize: {e}"));
            assert_eq!(read, v, "{s:?} reads back as {v:?}");
            assert_eq!(T::from_name(s).ok(), Some(v), "{s:?} parses as {v:?}");
        }
    }
}
