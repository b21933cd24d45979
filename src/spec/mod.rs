//! The bottom layer: the plain data every other layer shares, and the naming rules. It imports
//! nothing else of the crate (`scripts/check-layers` holds that), so it reads and tests alone.
//!
//! - [`Address`] and [`Ref`]: a resource's stable name and a reference to another;
//! - [`IdMap`]: the physical IDs and attributes resolved so far, by address;
//! - [`Account`]: the account and partition ARNs are written in;
//! - [`Sensitive`]: a value that renders as `(sensitive)` everywhere;
//! - [`names`]: the tiers, and the names AWS sees (`{app}-{env}`, the IAM path);
//! - [`Tags`] and the tags every resource of an environment carries ([`tags_for`]).

mod account;
mod address;
pub mod names;
mod sensitive;

use std::collections::BTreeMap;
use std::sync::Mutex;

pub use account::Account;
pub use address::{Address, Ref, GLOBAL};
pub use sensitive::{Sensitive, REDACTED};

pub type Tags = BTreeMap<String, String>;

/// The attributes of one resource another may reference ([`Ref::Attr`]), by name.
pub type Attrs = BTreeMap<&'static str, String>;

pub const TAG_APP: &str = "deployer:app";
pub const TAG_ENV: &str = "deployer:env";
pub const TAG_ADDRESS: &str = "deployer:address";
pub const TAG_MANAGED_BY: &str = "deployer:managed-by";

/// The tags every resource of the environment carries.
pub fn tags_for(app: &str, env: &str, address: &Address) -> Tags {
    BTreeMap::from([
        ("Name".to_string(), format!("{app}-{env}-{}-{}", address.kind(), address.name())),
        (TAG_APP.to_string(), app.to_string()),
        (TAG_ENV.to_string(), env.to_string()),
        (TAG_ADDRESS.to_string(), address.to_string()),
        (TAG_MANAGED_BY.to_string(), "deployer".to_string()),
    ])
}

/// Physical IDs and attributes of resources, by address: seeded from observation, filled in as
/// creates finish (a kind's create records the attributes it reports with [`IdMap::set_attr`]).
#[derive(Debug, Default)]
pub struct IdMap {
    ids: Mutex<BTreeMap<Address, String>>,
    attrs: Mutex<BTreeMap<Address, Attrs>>,
}

impl IdMap {
    pub fn insert(&self, address: Address, id: String) {
        self.ids.lock().expect("id map lock").insert(address, id);
    }
    pub fn remove(&self, address: &Address) {
        self.ids.lock().expect("id map lock").remove(address);
        self.attrs.lock().expect("id map lock").remove(address);
    }
    pub fn get(&self, address: &Address) -> Option<String> {
        self.ids.lock().expect("id map lock").get(address).cloned()
    }
    /// Records an attribute of the resource at `address` (see [`Ref::Attr`]).
    pub fn set_attr(&self, address: &Address, attr: &'static str, value: String) {
        self.attrs.lock().expect("id map lock").entry(address.clone()).or_default().insert(attr, value);
    }
    pub fn attr(&self, address: &Address, attr: &str) -> Option<String> {
        self.attrs.lock().expect("id map lock").get(address).and_then(|a| a.get(attr)).cloned()
    }
}
