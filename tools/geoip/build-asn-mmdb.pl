#!/usr/bin/perl
# build-asn-mmdb.pl OUT.mmdb CSV... - ASN database in the GeoLite2-ASN layout.
#
# Reads ip-location-db ASN CSV files (@ip-location-db/asn: asn-ipv4.csv and
# asn-ipv6.csv, rows "first_ip,last_ip,asn,organisation", inclusive ranges,
# RFC 4180 quoting) and writes a MaxMind DB whose records look exactly like
# GeoLite2-ASN's: {autonomous_system_number => uint32,
# autonomous_system_organization => utf8_string}, database_type "GeoLite2-ASN",
# an IPv6 tree holding IPv4 in ::/96 with MaxMind's aliases (::ffff:0:0/96,
# 2001::/32, 2002::/16 point at the IPv4 data), reserved networks left out.
#
# Consecutive rows with the same ASN and organisation whose ranges touch are
# merged before insertion (the 2026 npm data is already merged upstream, so
# this is a guard against slower builds, not a speed-up today);
# MaxMind::DB::Writer's insert_range (C code) splits each range into CIDR
# blocks itself. The whole file (~515,000 rows) takes about 10 s and 200 MB. Rows inside an
# aliased range are skipped (the writer refuses them), malformed rows are
# counted and skipped. The output is written to OUT.mmdb.tmp and renamed, so a
# running sensor that has the old file mapped keeps a valid file.
#
# Debian packages: perl, libmaxmind-db-writer-perl.
use strict;
use warnings;

use Encode qw(decode FB_CROAK);
use MaxMind::DB::Writer::Tree;
use Socket qw(AF_INET AF_INET6 inet_pton);
use Time::HiRes qw(time);

my $out = shift @ARGV;
die "usage: $0 OUT.mmdb ASN-CSV...\n" if !defined $out || !@ARGV;

my $t0 = time;
my %types = (
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'GeoLite2-ASN',
    languages                => ['en'],
    description              => {
        en => 'ASN database built by Fenghuo from @ip-location-db/asn '
            . '(RouteViews, NRO, DB-IP; CC BY 4.0)',
    },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 1,
    map_key_type_callback    => sub { $types{$_[0]} // 'utf8_string' },
);

# Ranges the writer aliases to the IPv4 tree: inserting inside them dies.
my @ALIASED = map { [ inet_pton(AF_INET6, $_->[0]), $_->[1] ] }
    (['::ffff:0:0', 96], ['2001::', 32], ['2002::', 16]);

sub in_prefix {
    my ($packed, $net, $len) = @_;
    my $bytes = int($len / 8);
    return 0 if substr($packed, 0, $bytes) ne substr($net, 0, $bytes);
    my $bits = $len % 8;
    return 1 if $bits == 0;
    my $mask = (0xFF << (8 - $bits)) & 0xFF;
    return (ord(substr($packed, $bytes, 1)) & $mask) == (ord(substr($net, $bytes, 1)) & $mask);
}

# Packed address + 1 (same length); undef on overflow.
sub next_addr {
    my ($p) = @_;
    my @b = unpack('C*', $p);
    for (my $i = $#b; $i >= 0; $i--) {
        if ($b[$i] < 255) {
            $b[$i]++;
            return pack('C*', @b);
        }
        $b[$i] = 0;
    }
    return undef;
}

my ($rows, $bad, $aliased, $inserted) = (0, 0, 0, 0);
my %data_cache;
my @pending; # [first_text, last_text, last_packed, asn, org]

sub flush_pending {
    return unless @pending;
    my ($first, $last, undef, $asn, $org) = @pending;
    my $key = "$asn\0$org";
    my $data = $data_cache{$key} //= {
        autonomous_system_number => $asn + 0,
        length($org) ? (autonomous_system_organization => $org) : (),
    };
    $tree->insert_range($first, $last, $data);
    $inserted++;
    @pending = ();
}

for my $csv (@ARGV) {
    open(my $fh, '<:raw', $csv) or die "$0: $csv: $!\n";
    while (my $line = <$fh>) {
        $line =~ s/\r?\n\z//;
        next if $line eq '';
        $rows++;
        my ($first, $last, $asn, $org) = $line =~ /\A([0-9a-fA-F.:]+),([0-9a-fA-F.:]+),([0-9]{1,10}),(.*)\z/;
        if (!defined $org) {
            $bad++;
            next;
        }
        if ($org =~ /\A"(.*)"\z/s) {
            $org = $1;
            if ($org =~ /(?<!")"(?!")/) { # a lone quote inside: not RFC 4180
                $bad++;
                next;
            }
            $org =~ s/""/"/g;
        } elsif ($org =~ /"/) {
            $bad++;
            next;
        }
        $org = eval { decode('UTF-8', $org, FB_CROAK) };
        my $fam = index($first, ':') >= 0 ? AF_INET6 : AF_INET;
        my $pf = inet_pton($fam, $first);
        my $pl = inet_pton($fam, $last);
        if (!defined $org || !$pf || !$pl || $pf gt $pl || $asn == 0 || $asn > 4294967295) {
            $bad++;
            next;
        }
        if ($fam == AF_INET6 && grep { in_prefix($pf, @$_) && in_prefix($pl, @$_) } @ALIASED) {
            $aliased++;
            next;
        }
        if (@pending && $pending[3] == $asn && $pending[4] eq $org
            && length($pending[2]) == length($pf)) {
            my $next = next_addr($pending[2]);
            if (defined $next && $next eq $pf) {
                $pending[1] = $last;
                $pending[2] = $pl;
                next;
            }
        }
        flush_pending();
        @pending = ($first, $last, $pl, $asn, $org);
    }
    flush_pending();
    close($fh);
}
die "$0: no usable rows in @ARGV\n" if $inserted == 0;

my $tmp = "$out.tmp";
open(my $ofh, '>:raw', $tmp) or die "$0: $tmp: $!\n";
$tree->write_tree($ofh);
close($ofh) or die "$0: $tmp: $!\n";
rename($tmp, $out) or die "$0: rename $tmp -> $out: $!\n";

printf STDERR "%s: %d rows, %d ranges inserted after merging, %d skipped as aliased, "
    . "%d malformed; %.1f s\n", $out, $rows, $inserted, $aliased, $bad, time - $t0;
