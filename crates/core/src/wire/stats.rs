//! The shape of a reactor's figures (`Reactor::stats`, `reactor.stats()` in JS), written once:
//! `for_each_stat!` lists the fields, with their docs, for every macro that needs them (the core's
//! `Stats` here, the binding's JS object type, which becomes the TypeScript type).

/// Calls `$m! { $(#[doc] name),* }` with every field of the figures, in order (docs as `#[doc]`
/// strings, which the binding's generated TypeScript keeps as written). Each is a u64 in the
/// core: totals since the reactor started, or levels now (`connections_open`, `bytes_queued`,
/// `relays_active`).
#[macro_export]
macro_rules! for_each_stat {
    ($m:ident) => {
        $m! {
            #[doc = "Connections accepted by listening ports."]
            connections_accepted,
            #[doc = "Stream connections the core holds now (accepted, adopted, connecting or connected)."]
            connections_open,
            #[doc = "Bytes read from stream connections and handed to the consumer."]
            bytes_in,
            #[doc = "Bytes the kernel took from writes on stream connections."]
            bytes_out,
            #[doc = "Bytes written and waiting in the core's write queues (all connections)."]
            bytes_queued,
            #[doc = "Datagrams received at datagram ports and handed to the consumer."]
            datagrams_in,
            #[doc = "Datagrams the kernel took from sends."]
            datagrams_out,
            #[doc = "Datagrams lost: sends that found no room (EAGAIN/ENOBUFS), plus those the kernel dropped at our datagram ports."]
            datagrams_dropped,
            #[doc = "Datagrams the kernel dropped at our datagram ports since their adoption (SO_MEMINFO), and those it cut off a coalesced GRO buffer."]
            datagrams_dropped_by_kernel,
            #[doc = "Batches the consumer took."]
            batches,
            #[doc = "Event records in those batches."]
            events,
            #[doc = "Times the consumer was told a batch is ready (the consumer's thread was woken for it)."]
            wakeups,
            #[doc = "Of `wakeups`, those the I/O thread announced (a hop between threads each); the rest were turns the host's own loop ran (hosted, or assisting a threaded reactor)."]
            wakeups_by_io_thread,
            #[doc = "Native relays running now."]
            relays_active,
            #[doc = "Bytes moved by native relays, both directions."]
            bytes_relayed,
            #[doc = "TLS sessions whose handshake completed and whose records this process encrypts and decrypts itself (rustls)."]
            tls_sessions_userspace,
            #[doc = "TLS sessions handed to the kernel (kTLS) after their handshake. Always 0 where the kernel has no TLS ULP (see `tlsSupport()`)."]
            tls_sessions_ktls,
            #[doc = "TLS handshakes that failed (refused, broken, timed out, or the peer left), on every kind of connection."]
            tls_handshake_failures,
        }
    };
}

macro_rules! define_stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A reactor's figures: totals since it started, and levels now.
        #[derive(Debug, Default, Clone, Copy, PartialEq)]
        pub struct Stats {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Stats {
            /// The field names, in order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($name)),*];
        }
    };
}

for_each_stat!(define_stats);

impl Stats {
    /// Mean event records per batch (0 before the first batch).
    pub fn events_per_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.events as f64 / self.batches as f64
        }
    }
}

/// Calls `$m! { ... }` with every field of a listening port's figures (`Reactor::port_stats`,
/// `port.stats()` in JS), as `for_each_stat!` does for the reactor's. Plain ports (adopted
/// listeners) fill the first group; proxy ports all of it.
#[macro_export]
macro_rules! for_each_port_stat {
    ($m:ident) => {
        $m! {
            #[doc = "Connections accepted since the port was adopted (admitted or not)."]
            connections_accepted,
            #[doc = "Connections of this port open now."]
            connections_active,
            #[doc = "Clients accepted and closed at once: their source already had its limit of connections."]
            refused_per_source,
            #[doc = "Clients accepted and closed at once: the per-source table had no free slot near their source."]
            refused_table_full,
            #[doc = "Times the port stopped accepting at maxConnections (clients waited in the kernel's backlog)."]
            paused_at_max,
            #[doc = "Times the port paused for its accept rate."]
            paused_for_rate,
            #[doc = "Connections closed for their PROXY protocol header: missing, malformed, too large, too slow or from an untrusted source."]
            proxy_header_errors,
            #[doc = "Clients the routing function refused (it returned null)."]
            refused_by_route,
            #[doc = "Upstream connects that failed (refused, timed out, unreachable), retries included."]
            upstream_connect_failures,
            #[doc = "Clients closed because no upstream could be reached after the retries."]
            upstream_unavailable,
            #[doc = "Proxied connections that reached an upstream (relays started)."]
            sessions_relayed,
            #[doc = "Bytes relayed from clients to upstreams."]
            bytes_to_upstream,
            #[doc = "Bytes relayed from upstreams to clients."]
            bytes_from_upstream,
            #[doc = "Of the relayed bytes, those moved by splice(2) through a pipe (the rest were copied)."]
            bytes_spliced,
            #[doc = "TLS ports: clients whose handshake failed (refused, broken, timed out, or gone before it completed); none reached the factory or an upstream."]
            tls_handshake_failures,
        }
    };
}

macro_rules! define_port_stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A listening port's figures: totals since its adoption, and levels now.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct PortStats {
            $($(#[$doc])* pub $name: u64,)*
        }
    };
}

for_each_port_stat!(define_port_stats);

/// Calls `$m! { ... }` with every field of a datagram proxy's figures (`Reactor::datagram_proxy_stats`,
/// `port.stats()` in JS), as `for_each_port_stat!` does for a listening port's.
#[macro_export]
macro_rules! for_each_datagram_proxy_stat {
    ($m:ident) => {
        $m! {
            #[doc = "Sessions open now, each with its own connected upstream socket."]
            sessions_active,
            #[doc = "New clients waiting now for the routing function's answer."]
            sessions_routing,
            #[doc = "Sessions opened since the port was made."]
            sessions_created,
            #[doc = "Sessions ended by their idle timeout."]
            sessions_expired,
            #[doc = "Sessions ended by their `responses` count (as nginx's proxy_responses)."]
            sessions_completed,
            #[doc = "New clients refused: maxSessions sessions (open or routing) were there already. Counted per datagram that would have opened one."]
            refused_max_sessions,
            #[doc = "New clients the routing function refused (returned null, threw, or answered something that is not an address)."]
            refused_by_route,
            #[doc = "New clients refused because no local port or socket could be had for their upstream socket (EADDRINUSE in sourcePortRange, ephemeral ports exhausted, EMFILE, ENFILE)."]
            refused_no_source_port,
            #[doc = "Upstream sockets that could not be connected (no route, ...), and errors the kernel reported on them (ECONNREFUSED from an ICMP port unreachable, ...)."]
            upstream_errors,
            #[doc = "Datagrams received from clients."]
            datagrams_from_clients,
            #[doc = "Bytes of those datagrams."]
            bytes_from_clients,
            #[doc = "Datagrams sent to upstreams (the kernel took them)."]
            datagrams_to_upstreams,
            #[doc = "Bytes sent to upstreams, PROXY headers included."]
            bytes_to_upstreams,
            #[doc = "Replies received from upstreams."]
            datagrams_from_upstreams,
            #[doc = "Bytes of those replies."]
            bytes_from_upstreams,
            #[doc = "Replies sent to clients (the kernel took them)."]
            datagrams_to_clients,
            #[doc = "Bytes of the replies sent to clients."]
            bytes_to_clients,
            #[doc = "Datagrams not forwarded, either way: those of refused clients, those a full socket buffer refused (EAGAIN/ENOBUFS), and those beyond what a client waiting for its route may queue."]
            datagrams_dropped,
            #[doc = "Datagrams the kernel dropped at the listening socket since the port was made (SO_MEMINFO): its receive buffer was full."]
            kernel_drops,
            #[doc = "Datagrams the kernel dropped at upstream sockets (SO_MEMINFO), closed ones included."]
            upstream_kernel_drops,
            #[doc = "The listening socket's SO_RCVBUF as the kernel reports it (bytes, its bookkeeping included)."]
            recv_buffer_size,
            #[doc = "The listening socket's SO_SNDBUF as the kernel reports it."]
            send_buffer_size,
        }
    };
}

macro_rules! define_datagram_proxy_stats {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A datagram proxy's figures: totals since it was made, and levels now.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct DatagramProxyStats {
            $($(#[$doc])* pub $name: u64,)*
        }
    };
}

for_each_datagram_proxy_stat!(define_datagram_proxy_stats);
