# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_portwarden_global_optspecs
    string join \n h/help V/version
end

function __fish_portwarden_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_portwarden_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_portwarden_using_subcommand
    set -l cmd (__fish_portwarden_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c portwarden -n "__fish_portwarden_needs_command" -s h -l help -d 'Print help'
complete -c portwarden -n "__fish_portwarden_needs_command" -s V -l version -d 'Print version'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "dump" -d 'Read the live ruleset of this network namespace over netlink and print it'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "roles" -d 'List the backup roles the catalog knows, or show one with its ports'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "catalog" -d 'List the catalog: roles, host settings and peer groups'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "check-config" -d 'Validate the host configuration against the catalog'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "listeners" -d 'List the listening TCP and bound UDP sockets of this network namespace'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "routes" -d 'Print the interfaces, addresses and main-table routes this network namespace\'s evaluation would use, as JSON (a debugging aid)'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "explain" -d 'Say what the live ruleset does to one new inbound connection'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "exposure" -d 'Map what the live ruleset accepts: every new inbound TCP and UDP connection, over all source addresses and ports'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "audit" -d 'Audit this host: what the live ruleset, the listening sockets and the host\'s roles mean together'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "daemon" -d 'Run as a service: follow the kernel and alert in the journal when a change opens or closes something the host\'s roles care about'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "status" -d 'Print the daemon\'s last report: a summary line and the current findings, with the monitoring-plugin exit codes of `audit` (a Nagios check: `portwarden status`)'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand dump" -l tries -d 'How many times to start over when the ruleset changes mid-read' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand dump" -l json -d 'Print the snapshot as JSON (generation, tables, chains, rules, sets)'
complete -c portwarden -n "__fish_portwarden_using_subcommand dump" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and not __fish_seen_subcommand_from show help" -l catalog-dir -d 'Also load catalog extensions (*.toml) from DIR, after the installed ones, e.g. to try them before installing (repeatable; later directories override earlier ones)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and not __fish_seen_subcommand_from show help" -l json -d 'Print JSON: the role (or a list of them) as the catalog holds it, with `port_variants`, each requirement\'s ports resolved'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'Show one role: its requirements with their ports, peers, conditions and sources'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and __fish_seen_subcommand_from show" -l catalog-dir -d 'Also load catalog extensions (*.toml) from DIR, after the installed ones, e.g. to try them before installing (repeatable; later directories override earlier ones)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and __fish_seen_subcommand_from show" -l json -d 'Print JSON: the role (or a list of them) as the catalog holds it, with `port_variants`, each requirement\'s ports resolved'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one role: its requirements with their ports, peers, conditions and sources'
complete -c portwarden -n "__fish_portwarden_using_subcommand roles; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand catalog" -l catalog-dir -d 'Also load catalog extensions (*.toml) from DIR, after the installed ones, e.g. to try them before installing (repeatable; later directories override earlier ones)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand catalog" -l json -d 'Print JSON: {"roles": [{id, title}], "settings": [{name, default, values, description, port_sets, source}], "peer_groups": [{name, description, suggested, minimum, note, source}]}'
complete -c portwarden -n "__fish_portwarden_using_subcommand catalog" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand check-config" -l config -d 'The configuration file' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand check-config" -l catalog-dir -d 'Also load catalog extensions (*.toml) from DIR, after the installed ones, e.g. to try them before installing (repeatable; later directories override earlier ones)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand check-config" -l offline -d 'Do not look at this host\'s interfaces (a configuration meant for another host)'
complete -c portwarden -n "__fish_portwarden_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand listeners" -l json -d 'Print JSON: a list of {proto, addr, port, v6only, dev, uid, inode, cgroup_id, cgroup, unit, unit_user, process: {pid, command, unit}}'
complete -c portwarden -n "__fish_portwarden_using_subcommand listeners" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand routes" -l json -d 'Print JSON (the only format)'
complete -c portwarden -n "__fish_portwarden_using_subcommand routes" -s h -l help -d 'Print help'
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l from -d 'Source address of the connection' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l to -d 'Destination address [default: the first address of the input interface of the source\'s family, else any non-loopback local one]' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l iif -d 'Input interface [default: the interface this host routes --from through]' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l sport -d 'Source port (the default is a typical Linux ephemeral port)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l at -d 'Evaluate time matches (meta hour/day/time, xt time) at this UTC moment, e.g. 2026-12-06T14:30:00Z [default: now]' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l tries -d 'How many times to start over when the ruleset changes mid-read' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l json -d 'Print the answer as JSON'
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -l batch -d 'Read probes as JSON lines on stdin and write one JSON answer per line. The ruleset and routes are read once: every answer is from the same snapshot'
complete -c portwarden -n "__fish_portwarden_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand exposure" -l at -d 'Evaluate time matches (meta hour/day/time, xt time) at this UTC moment, e.g. 2026-12-06T14:30:00Z [default: now]' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand exposure" -l tries -d 'How many times to start over when the ruleset changes mid-read' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand exposure" -l json -d 'Print JSON instead of text'
complete -c portwarden -n "__fish_portwarden_using_subcommand exposure" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l config -d 'The configuration file (not with --role)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l role -d 'A role the host plays, instead of a configuration file (repeatable)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l peer -d 'Bind a peer group: GROUP=ADDR[/LEN][,ADDR...] (repeatable; with --role)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l private-iface -d 'An interface facing the private network (repeatable; with --role)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l set -d 'A host setting: NAME=VALUE (repeatable; with --role)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l format -d 'Output format (--format json is the same as --json)' -r -f -a "text\t'Readable text, grouped by role'
json\t'`{"generation": N, "findings": [...], "notes": [...]}`, on one line'"
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l tries -d 'How many times to start over when the ruleset changes mid-read' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l catalog-dir -d 'Also load catalog extensions (*.toml) from DIR, after the installed ones, e.g. to try them before installing (repeatable; later directories override earlier ones)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l json -d 'Print the report as JSON: {"generation": N, "findings": [...], "notes": [...]} (the same as --format json)'
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l all-peers -d 'With JSON: list every peer prefix of each finding and piece. By default `peers` holds the first 16 and `peer_count` counts them all (behind a blocklist they run to thousands, and the report to megabytes)'
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -l prove-all -d 'Prove every fix (up to 256), however large the ruleset. By default an audit proves fewer as the ruleset grows, and none on one of more than 5,000 rules or 50,000 set elements (each proof copies and recompiles the ruleset: about a second on a 20,000-rule host); those fixes say "not proven"'
complete -c portwarden -n "__fish_portwarden_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -l config -d 'The configuration file' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l config -d 'The configuration file (for [daemon] report_path and stale_after_s)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l report -d 'The report file [default: report_path of the configuration]' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l max-age -d 'Seconds after which the report is stale [default: stale_after_s]' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l json -d 'Print the report file\'s JSON as is'
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -s h -l help -d 'Print help'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "dump" -d 'Read the live ruleset of this network namespace over netlink and print it'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "roles" -d 'List the backup roles the catalog knows, or show one with its ports'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "catalog" -d 'List the catalog: roles, host settings and peer groups'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "check-config" -d 'Validate the host configuration against the catalog'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "listeners" -d 'List the listening TCP and bound UDP sockets of this network namespace'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "routes" -d 'Print the interfaces, addresses and main-table routes this network namespace\'s evaluation would use, as JSON (a debugging aid)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "explain" -d 'Say what the live ruleset does to one new inbound connection'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "exposure" -d 'Map what the live ruleset accepts: every new inbound TCP and UDP connection, over all source addresses and ports'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "audit" -d 'Audit this host: what the live ruleset, the listening sockets and the host\'s roles mean together'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "daemon" -d 'Run as a service: follow the kernel and alert in the journal when a change opens or closes something the host\'s roles care about'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "status" -d 'Print the daemon\'s last report: a summary line and the current findings, with the monitoring-plugin exit codes of `audit` (a Nagios check: `portwarden status`)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from dump roles catalog check-config listeners routes explain exposure audit daemon status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from roles" -f -a "show" -d 'Show one role: its requirements with their ports, peers, conditions and sources'
