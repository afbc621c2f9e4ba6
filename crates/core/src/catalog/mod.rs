//! The model catalog: which providers exist, which models they serve, and what each
//! token costs. Built in (`catalog.toml`, the providers' published prices) and
//! extended or overridden by the operator's config with the same schema.

use crate::money::{MoneyError, Usd};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

const BUILTIN: &str = include_str!("catalog.toml");

/// The wire format a provider speaks (and a spend key's clients speak).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
}

impl WireFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WireFormat::OpenAi => "openai",
            WireFormat::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Chat,
    Embedding,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub format: WireFormat,
    /// OpenAI-format providers: the base including `/v1`; Anthropic: without it.
    pub base_url: String,
    /// The environment variable the operator's key for this provider is read from.
    pub api_key_env: String,
    /// The operator's key, from the config file (the environment overrides it).
    pub api_key: Option<ApiKey>,
    /// OpenAI's `openai-organization` header, if the operator sets one.
    pub organization: Option<String>,
    /// Several credentials or base URLs for this provider, with failover between them
    /// (`[[provider.target]]`); empty: the one target `base_url` + `api_key`.
    pub targets: Vec<Target>,
}

/// One way to reach a provider: a base URL and a credential (each defaulting to the
/// provider's own).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub base_url: Option<String>,
    /// The environment variable this target's key is read from (it overrides `api_key`).
    pub api_key_env: Option<String>,
    #[serde(default, deserialize_with = "api_key")]
    pub api_key: Option<ApiKey>,
}

fn api_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ApiKey>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(ApiKey::new))
}

impl Provider {
    /// The provider's targets as (base URL, credential), the default one when none is
    /// configured.
    pub fn resolved_targets(&self) -> Vec<(String, Option<ApiKey>)> {
        if self.targets.is_empty() {
            return vec![(self.base_url.clone(), self.api_key.clone())];
        }
        self.targets
            .iter()
            .map(|t| {
                let base = t.base_url.as_deref().unwrap_or(&self.base_url).trim_end_matches('/').to_string();
                (base, t.api_key.clone().or_else(|| self.api_key.clone()))
            })
            .collect()
    }
}

/// A provider credential. `Debug` hides it; read it with [`ApiKey::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

/// Prices in USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Prices {
    pub input: Usd,
    pub output: Usd,
    /// Cached input (OpenAI) or cache read (Anthropic); `input` where not billed apart.
    pub cached_input: Option<Usd>,
    /// Cache write (Anthropic); `input` where not billed apart.
    pub cache_write: Option<Usd>,
}

/// Tokens of one request, split the way they are priced. `input` excludes the cached
/// and cache-write tokens (providers that report a total must subtract them first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
}

impl TokenUsage {
    /// Every token, input (uncached, cached, cache-write) and output.
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.cached_input).saturating_add(self.cache_write).saturating_add(self.output)
    }
}

impl Prices {
    /// The cost of `usage`, rounded up to the next nano-dollar (never undercharge).
    pub fn cost(&self, usage: &TokenUsage) -> Usd {
        let part = |tokens: u64, per_million: Usd| i128::from(tokens) * i128::from(per_million.nanos());
        let total = part(usage.input, self.input)
            + part(usage.cached_input, self.cached_input.unwrap_or(self.input))
            + part(usage.cache_write, self.cache_write.unwrap_or(self.input))
            + part(usage.output, self.output);
        let nanos = (total + 999_999) / 1_000_000;
        Usd::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub id: String,
    pub provider: String,
    pub kind: ModelKind,
    pub prices: Prices,
    pub max_output_tokens: Option<u32>,
    pub context_window: Option<u32>,
    /// Release date, unix seconds (the `created` of `GET /v1/models`).
    pub created: i64,
    pub aliases: Vec<String>,
}

/// The catalog file's schema (built in and operator config alike).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    #[serde(default)]
    pub provider: Vec<ProviderEntry>,
    #[serde(default)]
    pub model: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub name: String,
    pub format: Option<WireFormat>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    pub api_key: Option<String>,
    pub organization: Option<String>,
    /// `[[provider.target]]`: several base URLs or credentials, with failover.
    pub target: Option<Vec<Target>>,
}

/// A model entry. For a new model `provider`, `input` and `output` are required; for
/// an id the catalog already has, the fields given override the built-in ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    pub provider: Option<String>,
    pub kind: Option<ModelKind>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub cached_input: Option<String>,
    pub cache_write: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub context_window: Option<u32>,
    pub created: Option<i64>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid TOML: {0}")]
    Toml(String),
    #[error("model {model}: {field} {source}")]
    Price { model: String, field: &'static str, source: MoneyError },
    #[error("model {model}: `{field}` is required for a model the catalog does not have")]
    Missing { model: String, field: &'static str },
    #[error("model {model}: provider {provider:?} is not defined")]
    UnknownProvider { model: String, provider: String },
    #[error("provider {provider}: `{field}` is required for a provider the catalog does not have")]
    MissingProviderField { provider: String, field: &'static str },
    #[error("model id or alias {0:?} appears twice")]
    Duplicate(String),
}

#[derive(Clone, Debug)]
pub struct Catalog {
    providers: Vec<Provider>,
    models: Vec<Model>,
    /// Model id and every alias -> index into `models`.
    index: HashMap<String, usize>,
}

impl Catalog {
    /// The built-in catalog. Its validity is checked by a unit test, so this cannot
    /// fail in a released build.
    pub fn builtin() -> Catalog {
        Catalog::empty().with_toml(BUILTIN).unwrap_or_else(|_| Catalog::empty())
    }

    pub fn empty() -> Catalog {
        Catalog { providers: Vec::new(), models: Vec::new(), index: HashMap::new() }
    }

    /// Applies a catalog file in TOML on top of this catalog.
    pub fn with_toml(self, text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Toml(e.to_string()))?;
        self.with_file(file)
    }

    /// Applies entries on top of this catalog: new providers and models are added,
    /// existing ones get the fields given.
    pub fn with_file(mut self, file: CatalogFile) -> Result<Catalog, CatalogError> {
        for entry in file.provider {
            self.apply_provider(entry)?;
        }
        for entry in file.model {
            self.apply_model(entry)?;
        }
        self.reindex()?;
        Ok(self)
    }

    fn apply_provider(&mut self, e: ProviderEntry) -> Result<(), CatalogError> {
        if let Some(p) = self.providers.iter_mut().find(|p| p.name == e.name) {
            p.format = e.format.unwrap_or(p.format);
            p.base_url = e.base_url.unwrap_or_else(|| p.base_url.clone());
            p.api_key_env = e.api_key_env.unwrap_or_else(|| p.api_key_env.clone());
            p.api_key = e.api_key.map(ApiKey::new).or(p.api_key.take());
            p.organization = e.organization.or(p.organization.take());
            p.targets = e.target.unwrap_or_else(|| std::mem::take(&mut p.targets));
            return Ok(());
        }
        let missing = |field| CatalogError::MissingProviderField { provider: e.name.clone(), field };
        let base_url = e.base_url.clone().ok_or_else(|| missing("base_url"))?;
        let api_key_env =
            e.api_key_env.clone().unwrap_or_else(|| format!("{}_API_KEY", e.name.to_uppercase().replace('-', "_")));
        self.providers.push(Provider {
            format: e.format.unwrap_or(WireFormat::OpenAi),
            name: e.name,
            base_url,
            api_key_env,
            api_key: e.api_key.map(ApiKey::new),
            organization: e.organization,
            targets: e.target.unwrap_or_default(),
        });
        Ok(())
    }

    fn apply_model(&mut self, e: ModelEntry) -> Result<(), CatalogError> {
        let price = |field: &'static str, v: &Option<String>| -> Result<Option<Usd>, CatalogError> {
            v.as_deref().map(Usd::parse).transpose().map_err(|source| CatalogError::Price {
                model: e.id.clone(),
                field,
                source,
            })
        };
        let (input, output) = (price("input", &e.input)?, price("output", &e.output)?);
        let (cached_input, cache_write) =
            (price("cached_input", &e.cached_input)?, price("cache_write", &e.cache_write)?);
        if let Some(p) = &e.provider
            && !self.providers.iter().any(|x| &x.name == p)
        {
            return Err(CatalogError::UnknownProvider { model: e.id.clone(), provider: p.clone() });
        }
        if let Some(m) = self.models.iter_mut().find(|m| m.id == e.id) {
            m.provider = e.provider.unwrap_or_else(|| m.provider.clone());
            m.kind = e.kind.unwrap_or(m.kind);
            m.prices.input = input.unwrap_or(m.prices.input);
            m.prices.output = output.unwrap_or(m.prices.output);
            m.prices.cached_input = cached_input.or(m.prices.cached_input);
            m.prices.cache_write = cache_write.or(m.prices.cache_write);
            m.max_output_tokens = e.max_output_tokens.or(m.max_output_tokens);
            m.context_window = e.context_window.or(m.context_window);
            m.created = e.created.unwrap_or(m.created);
            m.aliases.extend(e.aliases);
            return Ok(());
        }
        let missing = |field| CatalogError::Missing { model: e.id.clone(), field };
        let provider = e.provider.clone().ok_or_else(|| missing("provider"))?;
        let input = input.ok_or_else(|| missing("input"))?;
        let output = output.ok_or_else(|| missing("output"))?;
        self.models.push(Model {
            id: e.id,
            provider,
            kind: e.kind.unwrap_or(ModelKind::Chat),
            prices: Prices { input, output, cached_input, cache_write },
            max_output_tokens: e.max_output_tokens,
            context_window: e.context_window,
            created: e.created.unwrap_or(0),
            aliases: e.aliases,
        });
        Ok(())
    }

    fn reindex(&mut self) -> Result<(), CatalogError> {
        let mut index = HashMap::new();
        for (i, m) in self.models.iter().enumerate() {
            for name in std::iter::once(&m.id).chain(&m.aliases) {
                if index.insert(name.clone(), i).is_some() {
                    return Err(CatalogError::Duplicate(name.clone()));
                }
            }
        }
        self.index = index;
        Ok(())
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// For the operator's environment: replaces a provider's credential or base URL.
    pub fn provider_mut(&mut self, name: &str) -> Option<&mut Provider> {
        self.providers.iter_mut().find(|p| p.name == name)
    }

    /// Every model, in catalog order.
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// Resolves a model as clients name it: its id, an alias, or `provider/model`.
    pub fn model(&self, name: &str) -> Option<&Model> {
        if let Some(&i) = self.index.get(name) {
            return self.models.get(i);
        }
        let (provider, rest) = name.split_once('/')?;
        self.index.get(rest).and_then(|&i| self.models.get(i)).filter(|m| m.provider == provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid_and_has_the_seed_models() {
        let c = Catalog::empty().with_toml(BUILTIN).expect("built-in catalog parses");
        for id in ["gpt-4o-mini", "claude-sonnet-4-20250514", "text-embedding-3-small"] {
            assert!(c.model(id).is_some(), "{id} missing");
        }
        assert_eq!(c.model("gpt-4o-mini").unwrap().provider, "openai");
        assert_eq!(c.model("claude-sonnet-4-20250514").unwrap().provider, "anthropic");
        assert_eq!(c.model("openai/gpt-4o-mini").unwrap().id, "gpt-4o-mini");
        assert!(c.model("anthropic/gpt-4o-mini").is_none());
        for name in ["openai", "anthropic", "groq", "mistral", "deepseek", "xai", "together", "fireworks"] {
            let p = c.provider(name).unwrap_or_else(|| panic!("provider {name} missing"));
            assert!(p.base_url.starts_with("https://"), "{name}");
            assert!(c.models().iter().any(|m| m.provider == name), "no model for {name}");
        }
        assert_eq!(c.provider("anthropic").unwrap().format, WireFormat::Anthropic);
        for m in c.models() {
            assert!(c.provider(&m.provider).is_some(), "{}", m.id);
            if m.kind == ModelKind::Chat {
                assert!(m.prices.output > Usd::ZERO, "{} has no output price", m.id);
                assert!(m.max_output_tokens.is_some(), "{} has no max_output_tokens", m.id);
            }
        }
    }

    #[test]
    fn operator_overrides_prices_and_adds_models() {
        let c = Catalog::builtin()
            .with_toml(
                r#"
                [[provider]]
                name = "local"
                base_url = "http://127.0.0.1:11434/v1"

                [[model]]
                id = "gpt-4o-mini"
                input = "1.00"

                [[model]]
                id = "llama-local"
                provider = "local"
                input = "0"
                output = "0.01"
                max_output_tokens = 4096
                "#,
            )
            .unwrap();
        let mini = c.model("gpt-4o-mini").unwrap();
        assert_eq!(mini.prices.input, Usd::parse("1.00").unwrap());
        assert!(mini.prices.output > Usd::ZERO, "other fields kept");
        assert_eq!(c.model("llama-local").unwrap().provider, "local");
        assert_eq!(c.provider("local").unwrap().api_key_env, "LOCAL_API_KEY");
        let keyed = c.with_toml("[[provider]]\nname = \"openai\"\napi_key = \"sk-secret\"").unwrap();
        let openai = keyed.provider("openai").unwrap();
        assert_eq!(openai.api_key.as_ref().map(ApiKey::expose), Some("sk-secret"));
        assert!(!format!("{openai:?}").contains("sk-secret"), "Debug hides provider keys");
    }

    #[test]
    fn bad_operator_entries_are_named() {
        let err = |t: &str| Catalog::builtin().with_toml(t).unwrap_err().to_string();
        assert!(err("[[model]]\nid = \"x\"\nprovider = \"openai\"\noutput = \"1\"").contains("`input` is required"));
        assert!(err("[[model]]\nid = \"x\"\nprovider = \"nope\"\ninput = \"1\"\noutput = \"1\"").contains("\"nope\""));
        assert!(err("[[model]]\nid = \"gpt-4o-mini\"\ninput = \"-1\"").contains("input must not be negative"));
        assert!(err("[[model]]\nid = \"x\"\nprice = \"1\"").contains("unknown field"));
        assert!(err("[[model]]\nid = \"x\"\nprovider = \"openai\"\ninput = \"1\"\noutput = \"1\"\naliases = [\"gpt-4o-mini\"]").contains("appears twice"));
    }

    #[test]
    fn cost_is_exact_and_rounds_up() {
        let p = Prices {
            input: Usd::parse("3").unwrap(),
            output: Usd::parse("15").unwrap(),
            cached_input: Some(Usd::parse("0.30").unwrap()),
            cache_write: Some(Usd::parse("3.75").unwrap()),
        };
        let u = TokenUsage { input: 1000, cached_input: 2000, cache_write: 100, output: 500 };
        // 1000*3 + 2000*0.3 + 100*3.75 + 500*15 = 3000 + 600 + 375 + 7500 = 11475 micro-dollars
        assert_eq!(p.cost(&u), Usd::from_nanos(11_475_000));
        let tiny = Prices { input: Usd::parse("0.15").unwrap(), ..Prices::default() };
        assert_eq!(tiny.cost(&TokenUsage { input: 1, ..Default::default() }), Usd::from_nanos(150));
        let odd = Prices { input: Usd::parse("0.0375").unwrap(), ..Prices::default() };
        assert_eq!(odd.cost(&TokenUsage { input: 1, ..Default::default() }), Usd::from_nanos(38));
        // Cached tokens fall back to the input price where there is no cached price.
        let plain = Prices { input: Usd::parse("2").unwrap(), ..Prices::default() };
        assert_eq!(plain.cost(&TokenUsage { cached_input: 10, ..Default::default() }), Usd::from_nanos(20_000));
    }
}
