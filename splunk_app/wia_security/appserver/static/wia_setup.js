/*
 * WIA Security setup page: saves a destination to wia_security.conf and its secret to
 * storage/passwords (realm wia_security), then marks the app configured. The secret never goes
 * into a .conf file, and is cleared from the form once saved.
 */
/*
 * Why a destination URL cannot be saved, or "" when it can. A URL is stored in wia_security.conf in
 * plain text, so user:password inside it is refused (the secret belongs in storage/passwords).
 */
function wiaDestinationUrlProblem(url) {
    if (!/^(xsoar|phantom|splunksoar|splunk)\+https:\/\//.test(url)) {
        return "The URL must start with xsoar+https://, phantom+https://, splunksoar+https:// or splunk+https:// (a gateway's HEC endpoint)";
    }
    var authority = url.split("://")[1].split(/[\/?#]/)[0];
    if (authority.indexOf("@") !== -1) {
        return "Remove user:password from the URL: put the secret in the credential field (it is kept in storage/passwords)";
    }
    if (/[?&](token|api_key|apikey|password|secret)(_env|_file)?=/i.test(url)) {
        return "Remove the secret from the URL's query: put it in the credential field (it is kept in storage/passwords)";
    }
    return "";
}

/*
 * Why a client certificate cannot be saved, or "" when it can: the credential must hold the
 * certificate (then any intermediate CAs) and its private key, as PEM. The text itself is never shown.
 */
function wiaClientCertificateProblem(pem) {
    if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
        return "Paste the client certificate (-----BEGIN CERTIFICATE-----), then its private key";
    }
    if (!/-----BEGIN (ENCRYPTED |RSA |EC )?PRIVATE KEY-----/.test(pem)) {
        return "Paste the private key (-----BEGIN PRIVATE KEY-----) after the certificate";
    }
    return "";
}

/*
 * A long secret as Splunk's solnlib CredentialManager stores it: chunks of 255 characters under
 * <name>``splunk_cred_sep``1, 2, ..., then an entry holding the end mark. The input reads this
 * (and a single entry).
 */
var WIA_CHUNK_SEPARATOR = "``splunk_cred_sep``";
var WIA_CHUNK_END_MARK = ["S", "P", "L", "U", "N", "K"].map(function (c) { return WIA_CHUNK_SEPARATOR + c; }).join("") + WIA_CHUNK_SEPARATOR;

function wiaChunks(secret) {
    var chunks = [];
    for (var i = 0; i < secret.length; i += 255) {
        chunks.push(secret.substring(i, i + 255));
    }
    chunks.push(WIA_CHUNK_END_MARK);
    return chunks;
}

require([
    "jquery",
    "splunkjs/mvc",
    "splunkjs/mvc/simplexml/ready!"
], function ($, mvc) {
    "use strict";
    var APP = "wia_security";
    var REALM = "wia_security";
    var service = mvc.createService({ owner: "nobody", app: APP });

    function status(text, isError) {
        $("#wia-setup-status").text(text).css("color", isError ? "#c0392b" : "#2d7d46");
    }

    function post(path, data) {
        return new Promise(function (resolve, reject) {
            service.request(path, "POST", { output_mode: "json" }, null, $.param(data),
                { "Content-Type": "application/x-www-form-urlencoded" },
                function (err, response) { if (err) { reject(err); } else { resolve(response); } });
        });
    }

    function saveSecret(name, secret) {
        var id = encodeURIComponent(REALM + ":" + name + ":");
        // Update in place when the credential exists, create it otherwise.
        return post("storage/passwords/" + id, { password: secret }).catch(function () {
            return post("storage/passwords", { name: name, realm: REALM, password: secret });
        });
    }

    function saveDestination(name, url, credential, verify) {
        var stanza = "destination:" + name;
        var fields = { url: url, credential: credential, verify_tls: verify ? "true" : "false" };
        return post("configs/conf-wia_security/" + encodeURIComponent(stanza), fields).catch(function () {
            return post("configs/conf-wia_security", $.extend({ name: stanza }, fields));
        });
    }

    $("#wia-setup-save").on("click", function () {
        var name = $.trim($("#wia-destination-name").val()) || "default";
        var url = $.trim($("#wia-destination-url").val());
        var credential = $.trim($("#wia-credential-name").val());
        var secret = $("#wia-credential-secret").val();
        var problem = wiaDestinationUrlProblem(url);
        if (problem) {
            status(problem, true);
            return;
        }
        if (secret && !credential) {
            status("Give the credential a name", true);
            return;
        }
        var steps = secret ? saveSecret(credential, secret) : Promise.resolve();
        steps.then(function () {
            return saveDestination(name, url, credential, $("#wia-destination-verify").is(":checked"));
        }).then(function () {
            return post("apps/local/" + APP, { configured: "true" });
        }).then(function () {
            $("#wia-credential-secret").val("");
            status("Saved destination " + name + (secret ? " and its credential" : ""), false);
        }).catch(function (err) {
            status("Not saved: " + ((err && err.data && err.data.messages && err.data.messages[0].text) || err.status || err), true);
        });
    });

    function certificateStatus(text, isError) {
        $("#wia-client-certificate-status").text(text).css("color", isError ? "#c0392b" : "#2d7d46");
    }

    $("#wia-client-certificate-save").on("click", function () {
        var name = $.trim($("#wia-client-certificate-name").val());
        var pem = $.trim($("#wia-client-certificate-pem").val()) + "\n";
        var passphraseName = $.trim($("#wia-client-key-passphrase-name").val());
        var passphrase = $("#wia-client-key-passphrase").val();
        var problem = !name ? "Give the certificate credential a name" : wiaClientCertificateProblem(pem);
        if (!problem && passphrase && !passphraseName) {
            problem = "Give the passphrase credential a name";
        }
        if (problem) {
            certificateStatus(problem, true);
            return;
        }
        var chunks = wiaChunks(pem);
        var steps = chunks.reduce(function (done, chunk, index) {
            return done.then(function () { return saveSecret(name + WIA_CHUNK_SEPARATOR + (index + 1), chunk); });
        }, Promise.resolve());
        if (passphrase) {
            steps = steps.then(function () { return saveSecret(passphraseName, passphrase); });
        }
        steps.then(function () {
            $("#wia-client-certificate-pem").val("");
            $("#wia-client-key-passphrase").val("");
            certificateStatus("Saved client certificate " + name + (passphrase ? " and key passphrase " + passphraseName : ""), false);
        }).catch(function (err) {
            certificateStatus("Not saved: " + ((err && err.data && err.data.messages && err.data.messages[0].text) || err.status || err), true);
        });
    });
});
