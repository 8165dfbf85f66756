// Command livesnap is a self-hosted live-stream snapshot service that speaks the Alibaba Cloud
// ICE live snapshot API. See README.md.
//
// Subcommands:
//
//	serve       run the API and the capture runners
//	runner      one runner process (started by serve)
//	probe       one stream probe in its own process (started by serve)
//	call        call an API action, signed with an access key (a small CLI client)
//	accounts    administer accounts on the store directly
//	keys        administer access keys on the store directly
//	rtmp-relay  run a small multi-client RTMP relay (for demos and tests)
//	version     print the version
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = serve(args)
	case "call":
		err = call(args, os.Stdout)
	case "accounts":
		err = accounts(args, os.Stdout)
	case "keys":
		err = keys(args, os.Stdout)
	case "runner":
		err = runnerChild(args)
	case "probe":
		err = probeChild(args, os.Stdout)
	case "rtmp-relay":
		err = relay(args)
	case "version", "--version", "-v":
		fmt.Println("livesnap", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "livesnap: unknown command %q\n\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "livesnap:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: livesnap <command> [flags]

commands:
  serve        run the ICE-compatible API and the snapshot runner
               [--listen 127.0.0.1:8080] [--data ./data] [--min-interval 5] [--storage-config FILE]
               [--store postgres://user:password@host:port/db | sqlite://PATH]
               [--runners N] [--api-only | --runner-only] [--lease-ttl 10s]
  call ACTION  call an API action: livesnap call GetLiveSnapshotJob --JobId ID
               credentials: LIVESNAP_ACCESS_KEY_ID/_SECRET, LIVESNAP_ENDPOINT, or ./data/credentials.json
  accounts     create|disable|enable|enable-service|disable-service|set-limit [--account ID] [--limit N]
  keys         create --account ID [--policy 'ice:Get*,ice:List*'] | list [--account ID] | disable|enable|delete --key ID
               (accounts and keys work on the store directly, also while serve runs, with
                --data or --store as for serve;
                LIVESNAP_MASTER_KEY encrypts access key secrets at rest)
  rtmp-relay   run a multi-client RTMP relay [--listen 127.0.0.1:1935]
  version      print the version
`)
}

// env returns the environment variable name, or def when it is unset or empty.
func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
