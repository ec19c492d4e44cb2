/*
 * webshells.yar - web shells as they cross the network: uploaded (HTTP PUT or
 * multipart POST), fetched, or driven by their clients.
 *
 * Written for payload inspection, not for file systems: no filesize or
 * module conditions, and every string has a literal anchor of at least four
 * bytes so that libyara compiles without "slowing down scanning" warnings
 * (the sensor treats warnings as errors).
 *
 * Copyright Fenghuo authors; licence as the rest of this repository.
 */

rule Fenghuo_Webshell_PHP_Eval_Encoded : webshell php
{
    meta:
        description = "PHP code that evaluates a decoded blob: eval(base64_decode(...)) and similar"
        author = "Fenghuo"
        severity = "high"
        category = "webshell"
        version = 1

    strings:
        $open = "<?"
        $eval = /\beval\s*\(\s*@?\s*(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13)\s*\(/ nocase
        $assert = /\bassert\s*\(\s*@?\s*(base64_decode|gzinflate|gzuncompress|str_rot13)\s*\(/ nocase

    condition:
        $open and ($eval or $assert)
}

rule Fenghuo_Webshell_PHP_Request_Exec : webshell php
{
    meta:
        description = "PHP code that runs request input directly: eval($_POST[...]), system($_GET[...]), ..."
        author = "Fenghuo"
        severity = "high"
        category = "webshell"
        version = 1

    strings:
        $open = "<?"
        $run = /\b(eval|assert|system|passthru|shell_exec|exec|popen|proc_open)\s*\(\s*@?\s*\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
        $cb = /\b(create_function|call_user_func|array_map|preg_replace)\s*\([^;]{0,40}\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase

    condition:
        $open and ($run or $cb)
}

rule Fenghuo_Webshell_China_Chopper : webshell chopper
{
    meta:
        description = "China Chopper one-line shell (PHP, ASP, ASPX) or its client's request body"
        author = "Fenghuo"
        severity = "high"
        category = "webshell"
        version = 1

    strings:
        $php = /<\?php\s+@eval\s*\(\s*\$_POST\s*\[\s*['"]?\w{1,32}['"]?\s*\]\s*\)\s*;?\s*\?>/ nocase
        $asp = /<%\s*eval\s*\(?\s*request\s*\(\s*"\w{1,32}"\s*\)\s*\)?\s*%>/ nocase
        $aspx = /<%\s*eval\s*\(\s*Request\.Item\s*\[\s*"\w{1,32}"\s*\]\s*,\s*"unsafe"\s*\)\s*;?\s*%>/ nocase
        $client = "@eval(base64_decode($_POST[z0]))" nocase
        $client_asp = "Execute(\"Execute(\"\"On+Error+Resume+Next:" nocase

    condition:
        any of them
}

rule Fenghuo_Webshell_JSP_Cmd : webshell jsp
{
    meta:
        description = "JSP page that runs a request parameter as an operating system command"
        author = "Fenghuo"
        severity = "high"
        category = "webshell"
        version = 1

    strings:
        $jsp = "<%"
        $rt = "Runtime.getRuntime().exec(" nocase
        $pb = "new ProcessBuilder(" nocase
        $param = /request\.getParameter\s*\(/ nocase

    condition:
        $jsp and ($rt or $pb) and $param
}
