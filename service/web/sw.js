// Shows the alerts the service pushes to this browser (Web Push): {title, body, url, alert}.
self.addEventListener("push", (event) => {
  let message = { title: "Strykr alert", body: "", url: null };
  try {
    message = { ...message, ...event.data.json() };
  } catch {
    if (event.data) message.body = event.data.text();
  }
  event.waitUntil(
    self.registration.showNotification(message.title, {
      body: message.body,
      tag: message.alert ? message.alert.id : undefined,
      data: { url: message.url || "/" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url || "/"));
});
