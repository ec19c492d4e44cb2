/*
 * mining.yar - cryptocurrency mining on the wire (rules/yara/README.md): the Stratum
 * login of a miner and the Monero peer-to-peer protocol, whatever the port. nDPI 4.2
 * names Stratum on its usual ports only and does not know Monero's P2P protocol.
 */

rule Fenghuo_Mining_Monero_P2P : mining monero
{
    meta:
        description = "Monero peer-to-peer handshake (Levin protocol, epee storage): a Monero node, as a solo miner or a wallet daemon runs it"
        author = "Fenghuo"
        version = 1
        severity = "medium"
        category = "malware.mining"
        reference = "ndpi/monero.pcap"
    strings:
        $levin = { 01 21 01 01 01 01 01 01 }
        $node = "node_data"
        $peers = "local_peerlist_new"
        $netid = "network_id"
    condition:
        $levin at 0 and $netid and ($node or $peers)
}

rule Fenghuo_Mining_Stratum_Login : mining
{
    meta:
        description = "A miner logging in to a pool over Stratum (JSON-RPC login with a miner's agent string, or mining.subscribe then mining.authorize)"
        author = "Fenghuo"
        version = 1
        severity = "medium"
        category = "malware.mining"
    strings:
        $login = /"method"\s{0,4}:\s{0,4}"login"/
        $agent = /"agent"\s{0,4}:\s{0,4}"(xmrig|XMRig|xmr-stak|cpuminer|ccminer|SRBMiner|TeamRedMiner|lolMiner|NBMiner|PhoenixMiner|T-Rex)/
        $subscribe = "\"mining.subscribe\""
        $authorize = "\"mining.authorize\""
    condition:
        ($login and $agent) or ($subscribe and $authorize)
}
