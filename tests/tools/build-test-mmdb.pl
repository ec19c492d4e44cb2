#!/usr/bin/perl
# build-test-mmdb.pl OUTDIR - small, deterministic GeoIP test databases.
#
# Builds, with MaxMind::DB::Writer (Debian libmaxmind-db-writer-perl), the
# databases the unit and end-to-end tests read, so no binary test data lives in
# the repository. The output is byte-identical on every run (fixed build epoch,
# canonical data), and files are written to a temporary name and renamed.
#
#   test-country.mmdb      MaxMind layout:        {country => {iso_code => "CN"}}
#   test-country-ipl.mmdb  ip-location-db layout: {country_code => "CN"}
#   test-asn.mmdb          GeoLite2-ASN layout:   {autonomous_system_number => 4134,
#                                                  autonomous_system_organization => "..."}
#   test-city.mmdb         GeoIP2-City layout:    {city => {names => {en => ...}},
#                                                  country => {iso_code => ...}}
#   README.txt             the table below
#   expected.json          the same, machine-readable, with what geoip_lookup()
#                          must return for each probe address
#
# Contents (country = both country files; "-" = no record / field):
#
#   network         probe           country  ASN    AS organisation                 city (City DB country)
#   1.2.3.0/24      1.2.3.4         CN       4134   CHINANET-BACKBONE               Beijing (CN)
#   8.8.8.0/24      8.8.8.8         US       15169  GOOGLE                          Mountain View (US)
#   2001:250::/32   2001:250::1     CN       4538   ERX-CERNET-BKB China Education  Beijing (CN)
#                                                   and Research Network Center
#   202.97.0.0/16   202.97.1.1      CN       4809   中国电信                        Shanghai (CN)
#   81.2.69.0/24    81.2.69.142     GB       20712  Andrews & Arnold "AAISP" \ Ltd  London (GB)
#                                                   (a quote and a backslash: JSON escaping)
#   89.160.20.0/24  89.160.20.112   SE       29518  Bredband2 AB                    Linköping (SE)
#   9.9.9.0/24      9.9.9.9         CH       -      -                               - (CH; the City record
#                                                                                   has only a German name)
#   2400:cb00::/32  2400:cb00::1    -        13335  CLOUDFLARENET                   -
#   104.16.0.0/16   104.16.1.1      US       13335  CLOUDFLARENET                   Toronto (CA: the City DB
#                                                   disagrees, to test that a country file wins)
#   77.88.0.0/18    77.88.8.8       RU       13238  "ЯНДЕКС" x 17 (204 bytes; the   Moscow (RU)
#                                                   result keeps 63 characters = 126 bytes)
#   10.0.0.0/8      10.1.2.3        ZZ       64512  PRIVATE-MUST-NOT-APPEAR         Nowhere (ZZ)
#   2001:db8::/32   2001:db8::1     ZZ       64512  PRIVATE-MUST-NOT-APPEAR         Nowhere (ZZ)
#
# The last two are stored on purpose (remove_reserved_networks => 0): the sensor
# must never return them because private and documentation addresses are not
# looked up. IPv4 networks live in the IPv6 tree (::/96) with MaxMind's aliases
# (::ffff:0:0/96, 2002::/16, 2001::/32), like the real GeoIP2/GeoLite2 files.
use strict;
use warnings;
use utf8;

use File::Path qw(make_path);
use File::Spec;
use JSON::PP ();
use MaxMind::DB::Writer::Tree;

my $EPOCH = 1700000000; # 2023-11-14T22:13:20Z, fixed so the files are reproducible

my $PRIV = 'PRIVATE-MUST-NOT-APPEAR';

# network, probe, country, asn, as_org, city_en, city_country, city_extra_names
my @NETWORKS = (
    ['1.2.3.0/24', '1.2.3.4', 'CN', 4134, 'CHINANET-BACKBONE', 'Beijing', 'CN', {'zh-CN' => '北京'}],
    ['8.8.8.0/24', '8.8.8.8', 'US', 15169, 'GOOGLE', 'Mountain View', 'US', {}],
    ['2001:250::/32', '2001:250::1', 'CN', 4538,
        'ERX-CERNET-BKB China Education and Research Network Center', 'Beijing', 'CN',
        {'zh-CN' => '北京'}],
    ['202.97.0.0/16', '202.97.1.1', 'CN', 4809, '中国电信', 'Shanghai', 'CN',
        {'zh-CN' => '上海'}],
    ['81.2.69.0/24', '81.2.69.142', 'GB', 20712, 'Andrews & Arnold "AAISP" \\ Ltd', 'London',
        'GB', {}],
    ['89.160.20.0/24', '89.160.20.112', 'SE', 29518, 'Bredband2 AB', 'Linköping', 'SE', {}],
    ['9.9.9.0/24', '9.9.9.9', 'CH', undef, undef, undef, 'CH', {de => 'Zürich'}],
    ['2400:cb00::/32', '2400:cb00::1', undef, 13335, 'CLOUDFLARENET', undef, undef, {}],
    ['104.16.0.0/16', '104.16.1.1', 'US', 13335, 'CLOUDFLARENET', 'Toronto', 'CA', {}],
    ['77.88.0.0/18', '77.88.8.8', 'RU', 13238, 'ЯНДЕКС' x 17, 'Moscow', 'RU', {ru => 'Москва'}],
    ['10.0.0.0/8', '10.1.2.3', 'ZZ', 64512, $PRIV, 'Nowhere', 'ZZ', {}],
    ['2001:db8::/32', '2001:db8::1', 'ZZ', 64512, $PRIV, 'Nowhere', 'ZZ', {}],
);

# Extra probes: IPv6 forms of an IPv4 address, and public addresses in no DB.
my @ALIASES = (
    ['::ffff:1.2.3.4', '1.2.3.0/24', 'IPv4-mapped IPv6, judged and looked up as 1.2.3.4'],
    ['64:ff9b::808:808', '8.8.8.0/24', 'NAT64 well-known prefix, looked up as 8.8.8.8'],
    ['2002:102:304::1', '1.2.3.0/24', '6to4, looked up as the embedded 1.2.3.4'],
);
my @NEGATIVE = (
    ['1.2.4.1', 'public, in no database'],
    ['2a00:1450:4001:803::1017', 'public IPv6, in no database'],
    ['192.168.1.1', 'private (RFC 1918), never looked up'],
    ['::ffff:10.1.2.3', 'IPv4-mapped private address, never looked up'],
    ['2001::1', 'Teredo, never looked up'],
);

my $out = shift @ARGV;
die "usage: $0 OUTDIR\n" if !defined $out || @ARGV;
make_path($out) unless -d $out;
die "$0: $out: not a directory\n" unless -d $out;

my %types = (
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
    city                           => 'map',
    country                        => 'map',
    country_code                   => 'utf8_string',
    geoname_id                     => 'uint32',
    iso_code                       => 'utf8_string',
    names                          => 'map',
);

sub new_tree {
    my ($type, $desc, $languages) = @_;
    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version               => 6,
        record_size              => 24,
        database_type            => $type,
        languages                => $languages,
        description              => {en => $desc},
        alias_ipv6_to_ipv4       => 1,
        remove_reserved_networks => 0,
        map_key_type_callback    => sub { $types{$_[0]} // 'utf8_string' },
    );
    $tree->_set_build_epoch($EPOCH) if $tree->can('_set_build_epoch');
    return $tree;
}

sub write_tree {
    my ($tree, $name) = @_;
    my $path = File::Spec->catfile($out, $name);
    my $tmp = "$path.tmp.$$";
    open(my $fh, '>:raw', $tmp) or die "$0: $tmp: $!\n";
    $tree->write_tree($fh);
    close($fh) or die "$0: $tmp: $!\n";
    rename($tmp, $path) or die "$0: rename $tmp: $!\n";
}

my $country = new_tree('Fenghuo-Test-Country', 'Fenghuo test country DB (MaxMind layout)', ['en']);
my $ipl = new_tree('Fenghuo-Test-Country-ipl', 'Fenghuo test country DB (ip-location-db layout)', []);
my $asn = new_tree('GeoLite2-ASN', 'Fenghuo test ASN DB (GeoLite2-ASN layout)', []);
my $city = new_tree('Fenghuo-Test-City', 'Fenghuo test city DB (GeoIP2-City layout)', ['en']);

for my $n (@NETWORKS) {
    my ($net, undef, $cc, $as, $org, $city_en, $city_cc, $extra) = @$n;
    if (defined $cc) {
        $country->insert_network($net, {country => {iso_code => $cc}});
        $ipl->insert_network($net, {country_code => $cc});
    }
    if (defined $as) {
        my %rec = (autonomous_system_number => $as);
        $rec{autonomous_system_organization} = $org if defined $org;
        $asn->insert_network($net, \%rec);
    }
    if (defined $city_cc || defined $city_en) {
        my %names = %$extra;
        $names{en} = $city_en if defined $city_en;
        my %rec = (city => {names => \%names});
        $rec{country} = {iso_code => $city_cc} if defined $city_cc;
        $city->insert_network($net, \%rec);
    }
}

write_tree($country, 'test-country.mmdb');
write_tree($ipl,     'test-country-ipl.mmdb');
write_tree($asn,     'test-asn.mmdb');
write_tree($city,    'test-city.mmdb');

# What geoip_result holds: as_org[128] and city[96] keep at most 127 / 95
# bytes, cut at a UTF-8 character boundary (sensor/geoip.c copy_utf8).
sub clip {
    my ($s, $max) = @_;
    return '' unless defined $s;
    my $bytes = $s;
    utf8::encode($bytes);
    return $s if length($bytes) <= $max;
    my $n = $max;
    $n-- while $n > 0 && (ord(substr($bytes, $n, 1)) & 0xC0) == 0x80;
    my $cut = substr($bytes, 0, $n);
    utf8::decode($cut);
    return $cut;
}

my %by_net = map { $_->[0] => $_ } @NETWORKS;

sub expect_for {
    my ($n) = @_;
    my (undef, undef, $cc, $as, $org, $city_en, $city_cc) = @$n;
    my $private = defined $org && $org eq $PRIV;
    my %all = (
        country => $private ? '' : ($cc // ''),
        asn     => $private ? 0 : ($as // 0),
        as_org  => $private ? '' : clip($org, 127),
        city    => $private ? '' : clip($city_en, 95),
    );
    my %city_only = (
        country => $private ? '' : ($city_cc // ''),
        city    => $private ? '' : clip($city_en, 95),
    );
    return (\%all, \%city_only);
}

my @probes;
for my $n (@NETWORKS) {
    my ($all, $city_only) = expect_for($n);
    my $private = defined $n->[4] && $n->[4] eq $PRIV;
    push @probes, {
        ip => $n->[1], network => $n->[0],
        public => $private ? JSON::PP::false : JSON::PP::true,
        expect => $all, expect_city_db_only => $city_only,
    };
}
for my $a (@ALIASES) {
    my ($all, $city_only) = expect_for($by_net{$a->[1]});
    push @probes, {
        ip => $a->[0], network => $a->[1], note => $a->[2], public => JSON::PP::true,
        expect => $all, expect_city_db_only => $city_only,
    };
}
for my $a (@NEGATIVE) {
    my $public = $a->[1] =~ /never looked up/ ? JSON::PP::false : JSON::PP::true;
    push @probes, {
        ip => $a->[0], network => undef, note => $a->[1], public => $public,
        expect => {country => '', asn => 0, as_org => '', city => ''},
        expect_city_db_only => {country => '', city => ''},
    };
}

my @networks = map {
    my ($net, $probe, $cc, $as, $org, $city_en, $city_cc) = @$_;
    {
        network => $net, probe => $probe, country => $cc, asn => $as, as_org => $org,
        city => $city_en, city_db_country => $city_cc,
    }
} @NETWORKS;

my $doc = {
    generator => 'tests/tools/build-test-mmdb.pl',
    build_epoch => $EPOCH,
    databases => {
        country     => 'test-country.mmdb',
        country_ipl => 'test-country-ipl.mmdb',
        asn         => 'test-asn.mmdb',
        city        => 'test-city.mmdb',
    },
    notes => [
        'networks: what is stored (null = no record or field).',
        'probes[].expect: geoip_lookup() with test-country (or test-country-ipl), test-asn and '
            . 'test-city open; all empty means it returns 0.',
        'probes[].expect_city_db_only: country and city with only test-city open.',
        'as_org/city in expect are clipped to 127/95 bytes at a UTF-8 boundary like geoip_result.',
    ],
    networks => \@networks,
    probes   => \@probes,
};
my $json = JSON::PP->new->utf8->canonical->pretty->space_before(0)->encode($doc);
my $jpath = File::Spec->catfile($out, 'expected.json');
open(my $jfh, '>:raw', "$jpath.tmp.$$") or die "$0: $jpath: $!\n";
print $jfh $json;
close($jfh) or die "$0: $jpath: $!\n";
rename("$jpath.tmp.$$", $jpath) or die "$0: rename $jpath: $!\n";

# README.txt: the table of contents from the top of this file.
open(my $self, '<:raw', __FILE__) or die "$0: " . __FILE__ . ": $!\n";
my @readme = ("GeoIP test databases made by tests/tools/build-test-mmdb.pl; do not edit.\n\n");
while (my $line = <$self>) {
    last if $line =~ /^use /;
    next if $line =~ /^#!/;
    $line =~ s/^# ?//;
    push @readme, $line;
}
close($self);
my $rpath = File::Spec->catfile($out, 'README.txt');
open(my $rfh, '>:raw', "$rpath.tmp.$$") or die "$0: $rpath: $!\n";
print $rfh @readme;
close($rfh) or die "$0: $rpath: $!\n";
rename("$rpath.tmp.$$", $rpath) or die "$0: rename $rpath: $!\n";
