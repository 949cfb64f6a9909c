//! Routing: one matchit tree per HTTP method. A path that exists under another method is a
//! 405 with `Allow`; one that exists under none is a 404. `HEAD` finds the `GET` route
//! (hyper sends the head of its answer without the body). Every route declares who may call
//! it ([`Access`]), for mutating routes the action name the audit log records, and the query
//! parameters it accepts ([`Route::query_params`]): the pipeline rejects any other parameter
//! with a 422 naming it before the handler runs, so no handler can forget to.

use super::request::Request;
use super::response::Reply;
use crate::api::error::ApiResult;
use crate::app::App;
use crate::auth::Permission;
use hyper::Method;
use std::sync::Arc;

pub use crate::sync::BoxFuture;

/// A handler: `async fn(Arc<App>, &mut Request) -> ApiResult<Reply>`, boxed by [`h!`].
pub type Handler = for<'a> fn(Arc<App>, &'a mut Request) -> BoxFuture<'a, ApiResult<Reply>>;

/// Turns a handler into a [`Handler`]. A handler receives only what it uses:
/// - `h!(app.wireguard => list_servers)` for `async fn(&wireguard::Service, &mut Request)`,
///   the usual case: one domain service;
/// - `h!(name)` for `async fn(Arc<App>, &mut Request)`: the few that read across domains
///   (status, health, WebSocket tickets).
#[macro_export]
macro_rules! h {
    (app.$svc:ident => $f:path) => {{
        let f: $crate::api::router::Handler =
            |app, req| Box::pin(async move { $f(&app.$svc, req).await });
        f
    }};
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
    /// The query parameters this route accepts; none unless declared.
    pub query: &'static [&'static str],
}

impl Route {
    /// Declares the query parameters the route's handler reads (`?page=&size=`).
    pub fn query_params(&mut self, names: &'static [&'static str]) -> &mut Route {
        self.query = names;
        self
    }

    /// The one check of query parameters: the first one not declared is a 422 naming it.
    pub fn check_query(&self, raw: Option<&str>) -> ApiResult<()> {
        super::query::Query::parse(raw.unwrap_or(""))?.only(self.query)
    }
}

pub enum Lookup<'a> {
    Found(&'a Route, Vec<(String, String)>),
    MethodNotAllowed(String),
    NotFound,
}

#[derive(Default)]
pub struct Router {
    /// Per method, path → index into `routes`.
    trees: Vec<(Method, matchit::Router<usize>)>,
    /// Every route in registration order: matchit cannot list its routes, and the OpenAPI
    /// document is checked against this list.
    routes: Vec<(Method, String, Route)>,
}

impl Router {
    /// Registers `path` (matchit syntax, `/users/{id}`) for `method`. Panics on a duplicate
    /// or malformed path: the route table is fixed at compile time and checked by tests.
    /// The route accepts no query parameters unless [`Route::query_params`] says so.
    pub fn add(
        &mut self,
        method: Method,
        path: &str,
        access: Access,
        action: &'static str,
        handler: Handler,
    ) -> &mut Route {
        let module = action.split('.').next().unwrap_or(action);
        let route = Route {
            handler,
            access,
            module,
            action,
            query: &[],
        };
        let tree = match self.trees.iter_mut().position(|(m, _)| *m == method) {
            Some(i) => &mut self.trees[i].1,
            None => {
                self.trees.push((method.clone(), matchit::Router::new()));
                &mut self.trees.last_mut().expect("just pushed").1
            }
        };
        if let Err(e) = tree.insert(path, self.routes.len()) {
            panic!("route {method} {path}: {e}");
        }
        self.routes.push((method, path.to_string(), route));
        &mut self.routes.last_mut().expect("just pushed").2
    }

    /// Every route: method, path (matchit syntax) and route.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &str, &Route)> {
        self.routes.iter().map(|(m, p, r)| (m, p.as_str(), r))
    }

    /// Every route as (method, path in matchit syntax, access), in registration order.
    pub fn entries(&self) -> impl Iterator<Item = (&Method, &str, Access)> {
        self.routes().map(|(m, p, r)| (m, p, r.access))
    }

    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        // "/users/" finds "/users".
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        let method = match *method {
            Method::HEAD => &Method::GET,
            _ => method,
        };
        // A path that some method has as a fixed route (`POST /wireguard/servers/import`) is
        // that resource for every method: another method's `{id}` route does not take it.
        let fixed = |t: &matchit::Router<usize>| t.at(path).is_ok_and(|m| m.params.is_empty());
        let any_fixed = || self.trees.iter().any(|(_, t)| fixed(t));
        if let Some((_, tree)) = self.trees.iter().find(|(m, _)| m == method) {
            let found = tree
                .at(path)
                .ok()
                .filter(|m| m.params.is_empty() || !any_fixed())
                .and_then(|m| Some((m.params, &self.routes.get(*m.value)?.2)));
            if let Some((params, route)) = found {
                let params = params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                return Lookup::Found(route, params);
            }
        }
        let any_fixed = any_fixed();
        let mut allowed: Vec<&str> = self
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
        if allowed.contains(&"GET") {
            allowed.push("HEAD");
        }
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
    fn head_finds_the_get_route() {
        let r = router();
        assert!(matches!(
            r.lookup(&Method::HEAD, "/users/7"),
            Lookup::Found(route, _) if route.action == "users.get"
        ));
    }

    #[test]
    fn method_not_allowed_lists_allowed() {
        let r = router();
        match r.lookup(&Method::PUT, "/users") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "GET, POST, HEAD"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(r.lookup(&Method::GET, "/nope"), Lookup::NotFound));
        assert!(matches!(
            r.lookup(&Method::GET, "/users/1/x"),
            Lookup::NotFound
        ));
    }
}
