/* server/notify.h — tells systemd how the service is doing (sd_notify's protocol, without
 * libsystemd): one datagram to the unix socket named by $NOTIFY_SOCKET, "READY=1" once
 * anvil accepts requests (Type=notify in conf/anvil.service.in), "RELOADING=1" then
 * "READY=1" around a SIGHUP reload, "STOPPING=1" when a graceful stop begins. Without
 * $NOTIFY_SOCKET every call does nothing. */
#ifndef ANVIL_NOTIFY_H
#define ANVIL_NOTIFY_H

/* Sends state (e.g. "READY=1"); failures are ignored (systemd notices a missing READY). */
void notify_systemd(const char *state);

#endif
