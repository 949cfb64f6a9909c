//! Routing: one matchit tree per HTTP method. A path that exists under another method is a
//! 405 with `Allow`; one that exists under none is a 404. Every route declares who may call
//! it ([`Access`]) and, for mutating routes, the action name the audit log records.

use super::request::Request;
use super::response::Reply;
use crate::app::App;
use crate::auth::Permission;
use crate::error::ApiResult;
use hyper::Method;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A handler: `async fn(Arc<App>, &mut Request) -> ApiResult<Reply>`, boxed by [`h!`].
pub type Handler = for<'a> fn(Arc<App>, &'a mut Request) -> BoxFuture<'a, ApiResult<Reply>>;

/// Turns `async fn name(app: Arc<App>, req: &mut Request) -> ApiResult<Reply>` into a
/// [`Handler`].
#[macro_export]
macro_rules! h {
    ($f:path) => {{
        let f: $crate::api::router::Handler = |app, req| Box::pin($f(app, req));
        f
    }};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (login, liveness probes).
    Public,
    /// Any valid token, whatever the role.
    Authenticated,
    /// A valid token whose role grants this permission.
    Require(Permission),
}

pub struct Route {
    pub handler: Handler,
    pub access: Access,
    /// Endpoint group for logs (`users`, `auth`, …).
    pub module: &'static str,
    /// Stable name of the action for the audit log (`users.create`).
    pub action: &'static str,
}

pub enum Lookup<'a> {
    Found(&'a Route, Vec<(String, String)>),
    MethodNotAllowed(String),
    NotFound,
}

#[derive(Default)]
pub struct Router {
    trees: Vec<(Method, matchit::Router<Route>)>,
    /// Every registered (method, path, access), in registration order: matchit cannot list
    /// its routes, and the OpenAPI document is checked against this list.
    table: Vec<(Method, String, Access)>,
}

impl Router {
    /// Registers `path` (matchit syntax, `/users/{id}`) for `method`. Panics on a duplicate
    /// or malformed path: the route table is fixed at compile time and checked by tests.
    pub fn add(
        &mut self,
        method: Method,
        path: &str,
        access: Access,
        action: &'static str,
        handler: Handler,
    ) {
        let module = action.split('.').next().unwrap_or(action);
        let route = Route {
            handler,
            access,
            module,
            action,
        };
        let tree = match self.trees.iter_mut().position(|(m, _)| *m == method) {
            Some(i) => &mut self.trees[i].1,
            None => {
                self.trees.push((method.clone(), matchit::Router::new()));
                &mut self.trees.last_mut().expect("just pushed").1
            }
        };
        if let Err(e) = tree.insert(path, route) {
            panic!("route {method} {path}: {e}");
        }
        self.table.push((method, path.to_string(), access));
    }

    /// Every route as (method, path in matchit syntax, access), in registration order.
    pub fn entries(&self) -> impl Iterator<Item = (&Method, &str, Access)> {
        self.table.iter().map(|(m, p, a)| (m, p.as_str(), *a))
    }

    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        // "/users/" finds "/users".
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        // A path that some method has as a fixed route (`POST /wireguard/servers/import`) is
        // that resource for every method: another method's `{id}` route does not take it.
        let fixed = |t: &matchit::Router<Route>| t.at(path).is_ok_and(|m| m.params.is_empty());
        let any_fixed = || self.trees.iter().any(|(_, t)| fixed(t));
        if let Some((_, tree)) = self.trees.iter().find(|(m, _)| m == method) {
            if let Ok(m) = tree.at(path) {
                if m.params.is_empty() || !any_fixed() {
                    let params = m
                        .params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    return Lookup::Found(m.value, params);
                }
            }
        }
        let any_fixed = any_fixed();
        let allowed: Vec<&str> = self
            .trees
            .iter()
            .filter(|(_, t)| {
                if any_fixed {
                    fixed(t)
                } else {
                    t.at(path).is_ok()
                }
            })
            .map(|(m, _)| m.as_str())
            .collect();
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            Lookup::MethodNotAllowed(allowed.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nop(_: Arc<App>, _: &mut Request) -> ApiResult<Reply> {
        Ok(Reply::message("ok"))
    }

    fn router() -> Router {
        let mut r = Router::default();
        r.add(
            Method::GET,
            "/users",
            Access::Public,
            "users.list",
            crate::h!(nop),
        );
        r.add(
            Method::POST,
            "/users",
            Access::Public,
            "users.create",
            crate::h!(nop),
        );
        r.add(
            Method::GET,
            "/users/{id}",
            Access::Public,
            "users.get",
            crate::h!(nop),
        );
        r.add(
            Method::DELETE,
            "/users/{id}",
            Access::Public,
            "users.delete",
            crate::h!(nop),
        );
        r
    }

    #[test]
    fn found_with_params() {
        let r = router();
        match r.lookup(&Method::GET, "/users/42/") {
            Lookup::Found(route, params) => {
                assert_eq!(route.action, "users.get");
                assert_eq!(route.module, "users");
                assert_eq!(params, vec![("id".to_string(), "42".to_string())]);
            }
            _ => panic!("not found"),
        }
    }

    /// `PUT /wireguard/servers/import` is a 405 (only POST has it), not a PUT of the server
    /// with the id "import".
    #[test]
    fn a_fixed_route_is_not_taken_by_another_methods_parameter() {
        let mut r = router();
        r.add(
            Method::POST,
            "/users/import",
            Access::Public,
            "users.import",
            crate::h!(nop),
        );
        match r.lookup(&Method::DELETE, "/users/import") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "POST"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            r.lookup(&Method::POST, "/users/import"),
            Lookup::Found(route, _) if route.action == "users.import"
        ));
        assert!(matches!(
            r.lookup(&Method::DELETE, "/users/7"),
            Lookup::Found(route, _) if route.action == "users.delete"
        ));
    }

    #[test]
    fn entries_list_every_route() {
        let r = router();
        let got: Vec<(String, &str)> = r.entries().map(|(m, p, _)| (m.to_string(), p)).collect();
        assert_eq!(
            got,
            [
                ("GET".to_string(), "/users"),
                ("POST".to_string(), "/users"),
                ("GET".to_string(), "/users/{id}"),
                ("DELETE".to_string(), "/users/{id}"),
            ]
        );
    }

    #[test]
    fn method_not_allowed_lists_allowed() {
        let r = router();
        match r.lookup(&Method::PUT, "/users") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "GET, POST"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(r.lookup(&Method::GET, "/nope"), Lookup::NotFound));
        assert!(matches!(
            r.lookup(&Method::GET, "/users/1/x"),
            Lookup::NotFound
        ));
    }
}
