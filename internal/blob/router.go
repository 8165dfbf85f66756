package blob

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/livesnap/livesnap/internal/snapshot"
)

// AnyEndpoint in a Route matches every SnapshotOutput.Endpoint.
const AnyEndpoint = "*"

// StorageTypes are the SnapshotOutput.StorageType values a route may serve: ICE's oss, and
// livesnap's s3 and local.
var StorageTypes = []string{"oss", "s3", "local"}

// Route sends the SnapshotOutputs of one StorageType and Endpoint, optionally only some
// buckets, to a Writer. The Endpoint is only a name users pick: livesnap never connects to it,
// only to the backend the operator configured, so a user cannot aim it at other hosts.
type Route struct {
	StorageType string
	Endpoint    string   // compared without regard to case; AnyEndpoint matches all
	Buckets     []string // empty: any valid bucket name
	// Accounts, when set, are the only accounts that may use the route's buckets (the
	// operator assigned them); empty: each bucket belongs to the first account to use it.
	Accounts []int64
	Writer   Writer
	// Backend says where objects go, for logs: a directory or an S3 URL, never a secret.
	Backend string
	// BackendID identifies the buckets the route reaches: routes with the same BackendID
	// (say two endpoint names for one S3 service) reach the same buckets, so those have one
	// owner whichever name is used. Empty: buckets of their own.
	BackendID string

	owner ownerScope // set by NewRouter
}

// ownerScope is the StorageType and Endpoint that name a route's buckets for ownership: the
// route's own, in lower case, or those of the first route with the same BackendID.
type ownerScope struct{ storageType, endpoint string }

// Bucket is one bucket as ownership sees it (see Router.Bucket).
type Bucket struct {
	// StorageType and Endpoint name the route that owns the name space: a wildcard route's
	// Endpoint is AnyEndpoint, since every endpoint name leads to the same buckets there, and
	// routes sharing a backend share the first one's. Endpoint is in lower case.
	StorageType, Endpoint string
	Name                  string
	// Accounts, when set, are the only accounts that may use the bucket (Route.Accounts);
	// else the first account to submit a job to it owns it.
	Accounts []int64
}

// RouteError says which SnapshotOutput field no configured route accepts.
type RouteError struct {
	Field  string // StorageType, Endpoint or Bucket
	Value  string
	Reason string
}

// Error implements error.
func (e *RouteError) Error() string { return fmt.Sprintf("%s %q %s", e.Field, e.Value, e.Reason) }

// Unwrap makes every RouteError an ErrRefused.
func (e *RouteError) Unwrap() error { return ErrRefused }

// Router is a Writer that picks the route of each SnapshotOutput: an exact Endpoint match
// first, then the StorageType's AnyEndpoint route. Names are checked before any backend sees
// them.
type Router struct {
	routes []Route
}

// NewRouter checks the routes (known storage types, valid endpoints and buckets, one route per
// StorageType and Endpoint) and returns their router.
func NewRouter(routes ...Route) (*Router, error) {
	seen := map[string]bool{}
	for i, rt := range routes {
		name := fmt.Sprintf("output %d (%s %s)", i+1, rt.StorageType, rt.Endpoint)
		if !slices.Contains(StorageTypes, rt.StorageType) {
			return nil, fmt.Errorf("%s: StorageType must be one of %s", name, strings.Join(StorageTypes, ", "))
		}
		if rt.Endpoint != AnyEndpoint && !validEndpoint(rt.Endpoint) {
			return nil, fmt.Errorf("%s: Endpoint must be a host name, host:port or %q", name, AnyEndpoint)
		}
		key := rt.StorageType + " " + strings.ToLower(rt.Endpoint)
		if seen[key] {
			return nil, fmt.Errorf("%s: configured twice", name)
		}
		seen[key] = true
		for _, b := range rt.Buckets {
			if err := snapshot.CheckBucket(b); err != nil {
				return nil, fmt.Errorf("%s: Buckets: %q: %v", name, b, err)
			}
		}
		if rt.Writer == nil {
			return nil, fmt.Errorf("%s: no backend", name)
		}
		for j, a := range rt.Accounts {
			if a <= 0 || slices.Contains(rt.Accounts[:j], a) {
				return nil, fmt.Errorf("%s: Accounts must be distinct account ids (UserIds)", name)
			}
		}
	}
	r := &Router{routes: slices.Clone(routes)}
	first := map[string]int{} // BackendID → the first route with it
	for i := range r.routes {
		rt := &r.routes[i]
		rt.Accounts = slices.Clone(rt.Accounts)
		rt.owner = ownerScope{rt.StorageType, strings.ToLower(rt.Endpoint)}
		if rt.BackendID == "" {
			continue
		}
		j, shared := first[rt.BackendID]
		if !shared {
			first[rt.BackendID] = i
			continue
		}
		// Two names for the same buckets: one owner per bucket whichever name is used, and
		// one rule for who may use them.
		if !sameAccounts(rt.Accounts, r.routes[j].Accounts) {
			return nil, fmt.Errorf("output %d (%s %s) reaches the same backend as output %d (%s %s) and must list the same Accounts",
				i+1, rt.StorageType, rt.Endpoint, j+1, r.routes[j].StorageType, r.routes[j].Endpoint)
		}
		rt.owner = r.routes[j].owner
	}
	return r, nil
}

// sameAccounts reports whether a and b hold the same account ids, in any order.
func sameAccounts(a, b []int64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// validEndpoint accepts host or host:port as SubmitLiveSnapshotJob does for
// SnapshotOutput.Endpoint (snapshot.CheckEndpoint).
func validEndpoint(h string) bool { return snapshot.CheckEndpoint(h) == nil }

// StorageTypes lists the storage types with at least one route, in configuration order.
func (r *Router) StorageTypes() []string {
	var out []string
	for _, rt := range r.routes {
		if !slices.Contains(out, rt.StorageType) {
			out = append(out, rt.StorageType)
		}
	}
	return out
}

// Routes returns the configured routes (for logs).
func (r *Router) Routes() []Route { return slices.Clone(r.routes) }

// Check reports whether out has a route: nil, or a *RouteError naming the field.
func (r *Router) Check(out snapshot.SnapshotOutput) error {
	_, err := r.route(out)
	return err
}

// Bucket returns the bucket out writes to, as ownership sees it, or a *RouteError when no
// route accepts out. Every SnapshotOutput that reaches the same bucket of the same backend
// gets the same Bucket.
func (r *Router) Bucket(out snapshot.SnapshotOutput) (Bucket, error) {
	rt, err := r.route(out)
	if err != nil {
		return Bucket{}, err
	}
	return Bucket{StorageType: rt.owner.storageType, Endpoint: rt.owner.endpoint, Name: out.Bucket, Accounts: slices.Clone(rt.Accounts)}, nil
}

func (r *Router) route(out snapshot.SnapshotOutput) (*Route, error) {
	var exact, wildcard *Route
	typeKnown := false
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.StorageType != out.StorageType {
			continue
		}
		typeKnown = true
		switch {
		case strings.EqualFold(rt.Endpoint, out.Endpoint):
			exact = rt
		case rt.Endpoint == AnyEndpoint:
			wildcard = rt
		}
	}
	if !typeKnown {
		return nil, &RouteError{"StorageType", out.StorageType, "is not configured on this service"}
	}
	rt := exact
	if rt == nil {
		rt = wildcard
	}
	if rt == nil {
		return nil, &RouteError{"Endpoint", out.Endpoint, "is not configured for StorageType " + out.StorageType}
	}
	if len(rt.Buckets) > 0 && !slices.Contains(rt.Buckets, out.Bucket) {
		return nil, &RouteError{"Bucket", out.Bucket, "is not allowed at Endpoint " + out.Endpoint}
	}
	return rt, nil
}

// Put implements Writer on the output's route.
func (r *Router) Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error {
	if err := checkNames(out.Bucket, object); err != nil {
		return err
	}
	rt, err := r.route(out)
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", out.Bucket, object, err)
	}
	return rt.Writer.Put(ctx, out, object, data)
}

// Delete implements Writer on the output's route.
func (r *Router) Delete(ctx context.Context, out snapshot.SnapshotOutput, object string) error {
	if err := checkNames(out.Bucket, object); err != nil {
		return err
	}
	rt, err := r.route(out)
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", out.Bucket, object, err)
	}
	return rt.Writer.Delete(ctx, out, object)
}
