/*
 * hacktools.yar - attack tools moved over the network (rules/yara/README.md): the tool
 * itself in a file (an SMB copy, an HTTP download, a raw stream), not its use. Category
 * hacktool.*: the uncategorised L3-12 alert (l3_12_yara_malware).
 */

rule Fenghuo_HackTool_Mimikatz : hacktool credential_theft
{
    meta:
        description = "Mimikatz, the Windows credential-theft tool: its module function names (kuhl_m_*, kull_m_*) and its author's banner, in the binary, ASCII or UTF-16"
        author = "Fenghuo"
        version = 1
        severity = "high"
        category = "hacktool.credential_theft"
        reference = "suricata-verify/smb-mimikatz-copy-to-host.pcap"
    strings:
        $kuhl_sekurlsa = "kuhl_m_sekurlsa" ascii wide
        $kuhl_lsadump = "kuhl_m_lsadump" ascii wide
        $kuhl_kerberos = "kuhl_m_kerberos" ascii wide
        $kuhl_privilege = "kuhl_m_privilege" ascii wide
        $kull = "kull_m_" ascii wide
        $banner = "gentilkiwi" ascii wide
    condition:
        2 of ($kuhl_*) or ($banner and ($kull or 1 of ($kuhl_*)))
}
