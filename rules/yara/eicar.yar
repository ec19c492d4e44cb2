/*
 * eicar.yar - the EICAR anti-virus test string, anywhere in a payload.
 *
 * The EICAR file is harmless by design: it exists so that a detection chain
 * (sensor -> event -> correlator alert) can be tested end to end. The string
 * is matched wherever it appears in the scanned buffer, not only at the start
 * of a file, so it is also found inside an HTTP body or an SMB write.
 *
 * Copyright Fenghuo authors; licence as the rest of this repository.
 */
rule Fenghuo_EICAR_Test_File : eicar test
{
    meta:
        description = "EICAR anti-virus test string (harmless test file)"
        author = "Fenghuo"
        severity = "low"
        category = "malware.virus"
        version = 1

    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    condition:
        $eicar
}
