/*
 * c2_beacons.yar - command-and-control check-ins seen in the public corpus, written from
 * the traffic itself (rules/yara/README.md). They match a flow direction's reassembled
 * bytes (the HTTP request as sent) or a decoded HTTP body.
 */

rule Fenghuo_C2_CryptoWall4_Checkin : ransomware cryptowall
{
    meta:
        description = "CryptoWall 4 check-in: POST to a short random .php with a one-letter query key and a one-letter form key carrying a long hex blob"
        author = "Fenghuo"
        version = 1
        severity = "critical"
        category = "malware.ransomware"
        reference = "chrissanders/cryptowall4_c2.pcapng"
    strings:
        $post = /POST \/[A-Za-z0-9]{4,10}\.php\?[a-z]=[a-z0-9]{8,20} HTTP\/1\.[01]\r\n/
        $form = "Content-Type: application/x-www-form-urlencoded"
        $blob = /\r\n\r\n[a-z]=[0-9a-f]{96,}/
    condition:
        $post at 0 and $form and $blob
}

rule Fenghuo_C2_Emotet_Epoch_HTTP : trojan emotet
{
    meta:
        description = "Emotet (2020 epoch) HTTP C2: POST of a random path on a numeric address with a Referer to the same address, DNT and a form body"
        author = "Fenghuo"
        version = 1
        severity = "critical"
        category = "malware.trojan"
        reference = "ndpi/trickbot.pcap (Emotet-style C2 on port 7080)"
    strings:
        $post = /POST \/[A-Za-z0-9]{8,40} HTTP\/1\.1\r\nReferer: http:\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\/[A-Za-z0-9]{8,40}\r\n/
        $form = "Content-Type: application/x-www-form-urlencoded\r\nDNT: 1\r\n"
        $ie7 = "compatible; MSIE 7.0; Windows NT"
    condition:
        $post at 0 and $form and $ie7
}

rule Fenghuo_C2_LocalNRD_Checkin : trojan spyware
{
    meta:
        description = "LocalNRD spyware routine check-in (adcontext=ROUTINE_CHECKIN)"
        author = "Fenghuo"
        version = 1
        severity = "high"
        category = "malware.trojan"
        reference = "suricata-verify/http-malware-localnrd-checkin.pcap"
    strings:
        $a = "adcontext=ROUTINE_CHECKIN"
        $b = "&contextpeak="
        $c = "&contextcount="
    condition:
        all of them
}
